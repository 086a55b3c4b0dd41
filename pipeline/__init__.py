"""pipeline: progressive deployments for microservices on AWS, with a local platform."""

__version__ = "0.1.0"
