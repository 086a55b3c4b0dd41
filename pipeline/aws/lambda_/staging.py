"""Uploading a zip package: directly up to 50 MB, through an S3 bucket above that.

Lambda takes a zip of at most 50 MB in ``UpdateFunctionCode``'s ``ZipFile``; a larger one
(up to 250 MB unzipped) must come from S3 (``S3Bucket``/``S3Key``)
(https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html). The bucket is
one per account and region, ``pipeline-lambda-<account>-<region>``, created by ``pipeline
bootstrap`` (private: public access blocked). Objects are keyed by the function and the
package's SHA-256, so a retried upload writes the same object.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.errors import aws_errors
from pipeline.aws.lambda_.api import FunctionVersion, LambdaApi, error_code
from pipeline.aws.lambda_.package import Package, ZipPackage
from pipeline.lambda_zip import DIRECT_UPLOAD_MAX, check_size

__all__ = ["BOOTSTRAP_ACTIONS", "IAM_ACTIONS", "CodeBucket", "bucket_name", "upload_code"]

IAM_ACTIONS: frozenset[str] = frozenset({"s3:PutObject"})
BOOTSTRAP_ACTIONS: frozenset[str] = frozenset(
    {"s3:ListBucket", "s3:CreateBucket", "s3:PutBucketPublicAccessBlock"}
)


def bucket_name(account: str, region: str) -> str:
    """The staging bucket of ``account`` in ``region`` (at most 63 characters)."""
    return f"pipeline-lambda-{account}-{region}"[:63]


class CodeBucket:
    """The staging bucket. ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any, name: str, region: str) -> None:
        self.client = client
        self.name = name
        self.region = region

    def exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.name)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            with aws_errors(f"read S3 bucket {self.name}"):
                raise
        return True

    def create(self) -> None:
        """Create the bucket, private. Idempotent for its owner."""
        params: dict[str, Any] = {"Bucket": self.name}
        if self.region != "us-east-1":  # us-east-1 refuses its own name as a constraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**params)
        except ClientError as exc:
            if error_code(exc) != "BucketAlreadyOwnedByYou":
                with aws_errors(f"create S3 bucket {self.name}"):
                    raise
        block = dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        )
        with aws_errors(f"block public access to S3 bucket {self.name}"):
            self.client.put_public_access_block(Bucket=self.name, PublicAccessBlockConfiguration=block)

    def upload(self, function: str, package: ZipPackage) -> str:
        """Store ``package`` for ``function``; returns its key."""
        key = f"{function}/{package.sha256_hex}.zip"
        with aws_errors(f"upload the package of {function} to s3://{self.name}/{key}"):
            self.client.put_object(Bucket=self.name, Key=key, Body=package.data)
        return key


def upload_code(
    api: LambdaApi, package: Package, bucket: CodeBucket | None, revision_id: str = ""
) -> FunctionVersion:
    """``UpdateFunctionCode`` with ``package`` (``revision_id``: see ``LambdaApi.update_code``):
    a zip is size-checked first, and goes through ``bucket`` when it is over the
    direct-upload limit."""
    if not isinstance(package, ZipPackage):
        return api.update_code(package, revision_id=revision_id)
    staged = len(package.data) > DIRECT_UPLOAD_MAX and bucket is not None
    check_size(package.data, what=f"the package of {api.function}", staged=staged)
    if staged and bucket is not None:
        key = bucket.upload(api.function, package)
        return api.update_code(package, staged=(bucket.name, key), revision_id=revision_id)
    return api.update_code(package, revision_id=revision_id)
