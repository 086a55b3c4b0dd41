"""Amazon ECR: ``registry`` (``EcrRegistry``: repositories, resolve a tag or commit to a
digest, copy between registries), ``push`` (an OCI archive to a repository, blob by blob)
and ``permissions``."""
