"""REST API of project-wide objects: service accounts (admin only)."""
