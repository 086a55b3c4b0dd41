"""GitHub's REST API for the Dev-to-Ops handoff: promotion pull requests, verified
approvals and deployment statuses.

``http`` is the one HTTP client (httpx, retries, pagination, errors); ``ports`` the small
protocols the use cases need and ``rest`` their REST implementations; ``handoff``,
``approval`` and ``statuses`` are the use cases; ``release_file`` is the
``releases/<service>.json`` contract between the Dev pipeline and the Ops repository.
Nothing in ``pipeline.core`` or ``pipeline.engine`` imports this package.
"""
