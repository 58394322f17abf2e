"""The gateway's route table: every route of the five API documents, in match order

Each line maps methods and a path pattern to an upstream service and an auth policy
(see `gateway.routing`). The first matching route wins, so more specific patterns come
before the general ones they would otherwise be shadowed by; GET implies HEAD. Upload
routes carry their own body limits; every other route uses the gateway default.
Credential routes (a password checked, a token handed out) carry `credential=True`: the
login rate limits apply to them, per client address and per username.
"""

from __future__ import annotations

from gateway.routing import AUTHENTICATED, PUBLIC, STAFF, Route

MIB: int = 1024 * 1024
PROFILE_PICTURE_MAX_BODY: int = 20 * MIB
EVENT_PHOTO_MAX_BODY: int = 20 * MIB
IMAGE_MAX_BODY: int = 60 * MIB
ACTIVITY_UPLOAD_MAX_BODY: int = 60 * MIB
# The largest upload is validated and merged in one transaction: more than the default.
ACTIVITY_UPLOAD_TIMEOUT: float = 120.0
DATA_UPLOAD_MAX_BODY: int = 60 * MIB
# Data entry takes at most 1,000 values of a few numbers each (about 100 KB as JSON).
DATA_ENTRY_MAX_BODY: int = 1 * MIB

ROUTES: tuple[Route, ...] = (
    # events_service: a user's team invitations (before auth's /users/<username> routes)
    Route("GET", "/users/<username>/invitation", "events", AUTHENTICATED),
    Route("PUT", "/users/<username>/invitation/<team_id>/accept", "events", AUTHENTICATED),
    Route("PUT", "/users/<username>/invitation/<team_id>/reject", "events", AUTHENTICATED),
    # auth_service: signing keys
    Route("GET", "/.well-known/jwks.json", "auth", PUBLIC),
    # auth_service: users and passwords
    Route("GET", "/users/<username>/auth_modes", "auth", AUTHENTICATED),
    Route("POST", "/users/<username>/password/reset", "auth", PUBLIC, credential=True),
    Route("PATCH", "/users/<username>/password", "auth", PUBLIC, credential=True),
    Route("POST PUT", "/users/<username>/password", "auth", AUTHENTICATED),
    Route("GET PUT", "/users/<username>/privileges", "auth", STAFF),
    Route("PUT", "/users/<username>/picture", "auth", AUTHENTICATED),
    Route(
        "PUT",
        "/users/<username>/pictureupload",
        "auth",
        AUTHENTICATED,
        max_body=PROFILE_PICTURE_MAX_BODY,
    ),
    Route("PUT", "/users/<username>/disable", "auth", STAFF),
    Route("PUT", "/users/<username>/enable", "auth", STAFF),
    Route("GET PUT", "/users/<username>", "auth", AUTHENTICATED),
    Route("DELETE", "/users/<username>", "auth", STAFF),
    # Creating an account hashes its password: as costly to the service as a login.
    Route("POST", "/users", "auth", PUBLIC, credential=True),
    Route("GET", "/users", "auth", STAFF),
    # auth_service: JWT pairs, refresh and revocation
    Route("POST", "/auth/token/refresh", "auth", PUBLIC),
    Route("POST", "/auth/token", "auth", PUBLIC, credential=True),
    Route("PUT DELETE", "/auth/token", "auth", AUTHENTICATED),
    # auth_service: the image API's account and token flows
    Route("POST", "/register", "auth", PUBLIC, credential=True),
    Route("POST", "/api-token-auth", "auth", PUBLIC, credential=True),
    Route("GET", "/regenerateToken", "auth", AUTHENTICATED),
    # events_service: categories (before /events/<event_id>)
    Route("GET", "/events/category", "events", PUBLIC),
    Route("POST", "/events/category", "events", STAFF),
    Route("PUT DELETE", "/events/category/<name>", "events", STAFF),
    # events_service: tags (before /events/<event_id>)
    Route("GET", "/events/tags", "events", PUBLIC),
    Route("POST", "/events/tags", "events", STAFF),
    Route("PUT DELETE", "/events/tags/<name>", "events", STAFF),
    # events_service: event registrations
    Route("POST", "/events/<event_id>/register", "events", AUTHENTICATED),
    Route(
        "GET PUT DELETE",
        "/events/<event_id>/registrations/<registration_id>",
        "events",
        AUTHENTICATED,
    ),
    Route("GET", "/events/<event_id>/registrations", "events", STAFF),
    # events_service: organisers
    Route("DELETE", "/events/<event_id>/organisers/<username>", "events", STAFF),
    Route("GET", "/events/<event_id>/organisers", "events", AUTHENTICATED),
    Route("POST", "/events/<event_id>/organisers", "events", STAFF),
    # events_service: volunteers
    Route("PUT DELETE", "/events/<event_id>/volunteers/<username>", "events", STAFF),
    Route("GET", "/events/<event_id>/volunteers", "events", AUTHENTICATED),
    Route("POST", "/events/<event_id>/volunteers", "events", STAFF),
    # events_service: calendars (iCalendar) of all events and of one
    Route("GET", "/events/calendar.ics", "events", PUBLIC),
    Route("GET", "/events/<event_id>/calendar.ics", "events", PUBLIC),
    # events_service: events and the event photo
    Route("POST", "/events/<event_id>/photo", "events", STAFF, max_body=EVENT_PHOTO_MAX_BODY),
    Route("GET", "/events/<event_id>", "events", PUBLIC),
    Route("PUT DELETE", "/events/<event_id>", "events", STAFF),
    Route("GET", "/events", "events", AUTHENTICATED),
    Route("POST", "/events", "events", STAFF),
    # events_service: teams and invitations (invitations before /teams/<team_id>/<username>)
    Route("DELETE", "/teams/<team_id>/invitations/<username>", "events", AUTHENTICATED),
    Route("POST", "/teams/<team_id>/invitations", "events", AUTHENTICATED),
    Route("DELETE", "/teams/<team_id>/<username>", "events", AUTHENTICATED),
    Route("GET PUT DELETE", "/teams/<team_id>", "events", AUTHENTICATED),
    Route("GET", "/teams", "events", STAFF),
    Route("POST", "/teams", "events", AUTHENTICATED),
    # tickets_service: tickets (/ticket/public before /ticket/<username>)
    Route("GET", "/ticket/public", "tickets", PUBLIC),
    Route("PUT", "/ticket/<ticket_id>/close", "tickets", STAFF),
    Route("PUT", "/ticket/<ticket_id>/reopen", "tickets", AUTHENTICATED),
    # A public ticket's thread is everyone's; the service refuses a private one to others.
    Route("GET", "/ticket/<ticket_id>/comments", "tickets", PUBLIC),
    Route("POST", "/ticket/<ticket_id>/comments", "tickets", AUTHENTICATED),
    Route("GET", "/ticket/<username>", "tickets", AUTHENTICATED),
    Route("GET", "/ticket", "tickets", STAFF),
    Route("POST", "/ticket", "tickets", AUTHENTICATED),
    # activity_service: member activity sessions upload and download
    Route(
        "POST",
        "/sample/posts",
        "activity",
        AUTHENTICATED,
        max_body=ACTIVITY_UPLOAD_MAX_BODY,
        timeout=ACTIVITY_UPLOAD_TIMEOUT,
    ),
    Route("GET", "/sample/gets", "activity", AUTHENTICATED),
    # activity_service: taking back a member, or some of their periods (an addition)
    Route("DELETE", "/sample/members/<member_id>/periods", "activity", STAFF),
    Route("DELETE", "/sample/members/<member_id>", "activity", STAFF),
    # media_service: per-user images and signed media file URLs
    Route("GET PUT DELETE", "/images/<image_id>", "media", AUTHENTICATED, max_body=IMAGE_MAX_BODY),
    Route("GET POST", "/images", "media", AUTHENTICATED, max_body=IMAGE_MAX_BODY),
    Route("GET", "/media/<path:key>", "media", PUBLIC),
    # scheduler_service: scheduled API calls
    Route("GET DELETE PATCH", "/api/schedule-api/<call_id>", "scheduler", AUTHENTICATED),
    Route("GET POST", "/api/schedule-api", "scheduler", AUTHENTICATED),
    # scheduler_service: the staff page. A browser cannot send a token when it navigates:
    # the page and its assets are a static shell (public) that signs in with /auth/token/
    # and reads its data from the staff-only routes.
    Route("GET POST", "/admin/schedule-api/api/<path:rest>", "scheduler", STAFF),
    Route("GET", "/admin/schedule-api/assets/<name>", "scheduler", PUBLIC),
    Route("GET", "/admin/schedule-api", "scheduler", PUBLIC),
    # datapoints_service: v1 datapoints, data entry and geo
    Route("GET", "/api/v1/datapoint", "datapoints", AUTHENTICATED),
    Route(
        "GET POST",
        "/api/v1/dataentry",
        "datapoints",
        AUTHENTICATED,
        max_body=DATA_ENTRY_MAX_BODY,
    ),
    Route(
        "GET POST",
        "/api/v1/datapointentry",
        "datapoints",
        AUTHENTICATED,
        max_body=DATA_ENTRY_MAX_BODY,
    ),
    Route("GET", "/api/v1/geo", "datapoints", AUTHENTICATED),
    # datapoints_service: the staff map page. Like the scheduler's, a static shell (public)
    # that signs in with /auth/token/ and reads its data from the token-checked routes.
    Route("GET", "/datapoints/map/assets/<path:name>", "datapoints", PUBLIC),
    Route("GET", "/datapoints/map", "datapoints", PUBLIC),
    # datapoints_service: v2 regions, indicators, campaigns and offices
    Route("GET PUT DELETE", "/api/v2/region/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/region", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/region_type/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/region_type", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/indicator/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/indicator", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/indicator_tag/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/indicator_tag", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/campaign/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/campaign", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/campaign_type/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/campaign_type", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/office/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/office", "datapoints", AUTHENTICATED),
    # datapoints_service: v2 source-to-master maps
    Route("GET PUT DELETE", "/api/v2/region_map/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/region_map", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/indicator_map/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/indicator_map", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/campaign_map/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/campaign_map", "datapoints", AUTHENTICATED),
    # datapoints_service: v2 documents (CSV uploads) and their review
    Route("GET", "/api/v2/document/<id>", "datapoints", AUTHENTICATED),
    Route(
        "PUT DELETE",
        "/api/v2/document/<id>",
        "datapoints",
        AUTHENTICATED,
        max_body=DATA_UPLOAD_MAX_BODY,
    ),
    Route("GET", "/api/v2/document", "datapoints", AUTHENTICATED),
    Route(
        "POST",
        "/api/v2/document",
        "datapoints",
        AUTHENTICATED,
        max_body=DATA_UPLOAD_MAX_BODY,
    ),
    Route("GET", "/api/v2/document_review/<id>", "datapoints", AUTHENTICATED),
    Route("GET", "/api/v2/document_review", "datapoints", AUTHENTICATED),
    # datapoints_service: v2 users, groups and permissions. A POST to users reaches the
    # service, whose 405 points to auth_service (the document's "not implemented").
    Route("GET", "/api/v2/user/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/user", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/group/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/group", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/user_group/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/user_group", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/region_permission/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/region_permission", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/group_permission/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/group_permission", "datapoints", AUTHENTICATED),
    Route("GET PUT DELETE", "/api/v2/user_permission/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/user_permission", "datapoints", AUTHENTICATED),
    # datapoints_service: v2 custom dashboards
    Route("GET PUT DELETE", "/api/v2/custom_dashboard/<id>", "datapoints", AUTHENTICATED),
    Route("GET POST", "/api/v2/custom_dashboard", "datapoints", AUTHENTICATED),
)
