"""Stack configuration (pydantic): the user's API."""
