// The session of a staff page (servicekit.pages): sign in against the gateway's
// /auth/token/, keep the access token in this tab's sessionStorage, go on for staff only
// (the token's role claim), and call the API with the token. A page loads this script
// before its own and builds its session with StaffSession.create({...}).
"use strict";

const StaffSession = (() => {
  const STAFF_ROLES = ["staff", "superuser"];
  const ENDED = "Your session has ended: please sign in again.";

  function claimsOf(token) {
    try {
      const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "=")));
    } catch (error) {
      return null;
    }
  }

  function isStaff(claims) {
    return Boolean(claims && STAFF_ROLES.includes(claims.role));
  }

  // tokenKey: where the token is kept; say(text): shows a message; onSignedOut(reason):
  // the page goes back to its sign-in form.
  function create({ tokenKey, say, onSignedOut }) {
    function token() {
      const stored = sessionStorage.getItem(tokenKey);
      const claims = stored && claimsOf(stored);
      if (!claims || !claims.exp || claims.exp * 1000 <= Date.now() || !isStaff(claims)) {
        sessionStorage.removeItem(tokenKey);
        return null;
      }
      return stored;
    }

    function signOut(reason) {
      sessionStorage.removeItem(tokenKey);
      onSignedOut(reason);
    }

    // The answer to an API call with the token: {response, body}. Without a valid token,
    // or on a 401, the session ends and the call throws.
    async function call(url, options = {}) {
      const current = token();
      if (!current) {
        signOut(ENDED);
        throw new Error("signed out");
      }
      const response = await fetch(url, {
        ...options,
        headers: { Accept: "application/json", Authorization: `Bearer ${current}` },
      });
      if (response.status === 401) {
        signOut(ENDED);
        throw new Error("signed out");
      }
      const body = await response.json().catch(() => ({}));
      return { response, body };
    }

    // True once a staff member is signed in; otherwise says why not.
    async function signIn(username, password) {
      say("");
      const response = await fetch("/auth/token/", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ username, password }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok || !body.access) {
        say(body.error || "Sign-in failed.");
        return false;
      }
      if (!isStaff(claimsOf(body.access))) {
        say("This page is for staff only.");
        return false;
      }
      sessionStorage.setItem(tokenKey, body.access);
      return true;
    }

    return { token, signOut, call, signIn };
  }

  return { create, claimsOf };
})();
