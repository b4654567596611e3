"""The S3 dialect's building blocks: SigV4 verification and ``aws-chunked`` bodies."""
