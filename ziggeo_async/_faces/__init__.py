"""The faces: the async client, the portal and the generated sync facade."""
