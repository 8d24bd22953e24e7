"""The runtime's network: a VPC with private subnets only (no internet gateway, no NAT: no internet egress)
and VPC endpoints for every AWS service the data paths call, flow logs to the access-log bucket."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

VPC_CIDR = "10.60.0.0/16"
GATEWAY_ENDPOINTS = {
    "S3": ec2.GatewayVpcEndpointAwsService.S3,
    "DynamoDb": ec2.GatewayVpcEndpointAwsService.DYNAMODB,
}
INTERFACE_ENDPOINTS = {
    "Kinesis": ec2.InterfaceVpcEndpointAwsService.KINESIS_STREAMS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "CloudWatch": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "CloudWatchLogs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Athena": ec2.InterfaceVpcEndpointAwsService.ATHENA,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "EventBridge": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,  # Batch on Fargate pulls the job image
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
}
"""Endpoints by construct id: what the Lambdas and jobs reach AWS through (the only way out of the VPC)."""


class PrivateNetwork(Construct):
    """VPC over two availability zones, isolated private subnets, the endpoints above."""

    def __init__(self, scope: Construct, construct_id: str, *, flow_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="runtime", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                )
            ],
            restrict_default_security_group=True,
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_s3(flow_logs, "vpc-flow-logs/"),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.security_group = ec2.SecurityGroup(
            self,
            "Runtime",
            vpc=self.vpc,
            description="CDP runtime (Lambdas, jobs): outbound to the VPC endpoints only",
            allow_all_outbound=True,  # isolated subnets: the endpoints are the only destinations there are
        )
        endpoints_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="CDP VPC endpoints: HTTPS from the runtime only",
            allow_all_outbound=False,
        )
        endpoints_group.add_ingress_rule(
            ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), "HTTPS from inside the VPC"
        )
        for name, service in GATEWAY_ENDPOINTS.items():
            self.vpc.add_gateway_endpoint(name, service=service, subnets=[self.subnets])
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.subnets,
                security_groups=[endpoints_group],
                private_dns_enabled=True,
                open=False,  # the group's one rule (HTTPS from the VPC's range) is the only way in
            )
