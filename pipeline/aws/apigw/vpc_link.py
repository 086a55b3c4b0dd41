"""The VPC link an ECS service's REST API reaches the environment's ALB through.

A REST API integrates privately with an Application Load Balancer through a VPC link of
the V2 kind (made with the ``apigatewayv2`` API, in the environment's subnets and security
groups) and ``integrationTarget`` naming the ALB; the integration's URI sets the path and
Host the ALB sees. https://docs.aws.amazon.com/apigateway/latest/developerguide/
apigateway-private-integration.html. The ALB's listener rule still splits traffic between
the slots: the REST API is in front of it, not instead of it.
"""

from __future__ import annotations

from typing import Any

from pipeline.aws.apigw.spec import AlbTarget
from pipeline.aws.errors import aws_errors
from pipeline.aws.session import AwsSession
from pipeline.core.errors import NotFoundError, PlatformError
from pipeline.core.ports import Clock

__all__ = ["VpcLinks"]

LINK_TIMEOUT = 900.0  # seconds; provisioning a VPC link takes minutes
LINK_POLL = 15.0

IAM_ACTIONS: frozenset[str] = frozenset(
    {
        "apigateway:GET",
        "apigateway:POST",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListeners",
    }
)


class VpcLinks:
    def __init__(self, session: AwsSession, clock: Clock) -> None:
        self.session = session
        self.clock = clock
        self.client: Any = session.client("apigatewayv2")

    def find(self, name: str) -> str | None:
        """The id of the VPC link called ``name``; None when there is none."""
        kwargs: dict[str, Any] = {}
        while True:
            with aws_errors("list the VPC links"):
                page = self.client.get_vpc_links(**kwargs)
            for item in page.get("Items", []):
                if item.get("Name") == name:
                    return str(item["VpcLinkId"])
            if not page.get("NextToken"):
                return None
            kwargs["NextToken"] = page["NextToken"]

    def require(self, target: AlbTarget) -> str:
        found = self.find(target.vpc_link)
        if found is None:
            raise NotFoundError(
                f"the VPC link {target.vpc_link} does not exist",
                hint="run `pipeline bootstrap` again: it creates the link first",
            )
        return found

    def create(self, target: AlbTarget, tags: dict[str, str]) -> None:
        """Create the link unless it exists (another service's plan may have made it in this
        run), then wait until it is AVAILABLE: API Gateway takes minutes to provision one."""
        if not target.subnets or not target.security_groups:
            raise PlatformError(
                f"cannot create the VPC link {target.vpc_link}: the environment names no subnets or "
                "security groups",
                hint="set aws.subnets and aws.security_groups of the environment",
            )
        link = self.find(target.vpc_link)
        if link is None:
            with aws_errors(f"create the VPC link {target.vpc_link}"):
                made = self.client.create_vpc_link(
                    Name=target.vpc_link,
                    SubnetIds=list(target.subnets),
                    SecurityGroupIds=list(target.security_groups),
                    Tags=tags,
                )
            link = str(made["VpcLinkId"])
        self.wait_available(target.vpc_link, link)

    def wait_available(self, name: str, link: str) -> None:
        deadline = self.clock.now() + LINK_TIMEOUT
        while True:
            with aws_errors(f"read the VPC link {name}"):
                found = self.client.get_vpc_link(VpcLinkId=link)
            status = str(found.get("VpcLinkStatus", ""))
            if status == "AVAILABLE":
                return
            if status in {"FAILED", "DELETING", "INACTIVE"} or self.clock.now() >= deadline:
                raise PlatformError(
                    f"the VPC link {name} is {status or 'not available'} "
                    f"({found.get('VpcLinkStatusMessage') or 'no reason given'})",
                    hint="check its subnets and security groups, delete it if it FAILED, then run "
                    "`pipeline bootstrap` again",
                )
            self.clock.sleep(LINK_POLL)

    def base_url(self, target: AlbTarget) -> str:
        """``http://<ALB DNS name>[:port]`` of the live listener: the scheme, Host and port
        of the integration's URI (the default port of the scheme is left out)."""
        elbv2 = self.session.client("elbv2")
        with aws_errors(f"describe the listener {target.listener_arn}"):
            listener = elbv2.describe_listeners(ListenerArns=[target.listener_arn])["Listeners"][0]
        with aws_errors(f"describe the load balancer {target.load_balancer_arn}"):
            found = elbv2.describe_load_balancers(LoadBalancerArns=[target.load_balancer_arn])
        scheme = "https" if str(listener.get("Protocol", "HTTP")).upper() == "HTTPS" else "http"
        port = int(listener.get("Port", 443 if scheme == "https" else 80))
        suffix = "" if port == {"http": 80, "https": 443}[scheme] else f":{port}"
        return f"{scheme}://{found['LoadBalancers'][0]['DNSName']}{suffix}"
