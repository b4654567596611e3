"""The domain: objects, access and validation, with no HTTP, SQL or storage SDK in sight."""
