"""Teams and the invitations that fill them."""
