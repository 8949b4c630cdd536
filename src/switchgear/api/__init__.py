"""The native, vendor-neutral REST API (`/api/v1`) with OpenAPI and live events."""
