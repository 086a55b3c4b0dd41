"""Lambda services (the trailing underscore keeps the keyword free): ``api`` (the Lambda
client as domain calls), ``spec`` (``LambdaSpec`` from the typed config), ``slots`` and
``compute`` (versions behind the blue/green aliases, the Compute port), ``router``
(``LambdaAliasRouter``), ``metrics`` (CloudWatch by version), ``concurrency``,
``gateway`` (the HTTP API), ``package``, ``readiness``, ``stages``, ``platform`` (the
ports of one service), ``bootstrap`` and ``permissions``."""
