"""POST /oauth/token: a bearer token for the client whose Basic credentials the security
hook has already checked."""

from .context import backend


def generate_token(token_info, **_body):
    token, expires_in = backend().auth.issue_token(token_info["client"])
    return {"access_token": token, "token_type": "Bearer", "expires_in": expires_in}
