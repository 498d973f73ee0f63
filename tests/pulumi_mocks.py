"""Pulumi mocks for the infrastructure tests: no engine, no AWS, no Docker.

`deploy(program, config)` runs `program` (a component or the whole `__main__.py`) against mocks
that answer like AWS would (ARNs, URLs, ids in their real shapes, camelCase wire names) and
returns a `Deployment`: every registered resource with its resolved inputs, parent and outputs.
"""

from __future__ import annotations

import collections.abc
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.sync_await import _sync_await
from pulumi.runtime.stack import run_pulumi_func

ACCOUNT = "123456789012"
REGION = "us-east-1"
MOCK_POWERTOOLS_LAYER = 99  # a made-up layer number: what the SSM parameter would hold
PROJECT = "arti4207"
STACK = "dev"
# How the Pulumi wire format marks a secret value: {SECRET_SIG: ..., "value": the value}.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
DEFAULT_VPC = "vpc-0defa17"
DEFAULT_SUBNETS = ["subnet-0aaa1111", "subnet-0bbb2222"]
ADDED_SUBNET = "subnet-0ccc3333"  # in the default VPC, not a default subnet
CUSTOM_VPC = "vpc-0c0ffee"


@dataclass(frozen=True)
class Options:
    """The resource options the engine would act on when a change replaces or deletes a resource
    (what the program asked for; None: left to the default)."""
    protect: bool | None = None
    retain_on_delete: bool | None = None
    delete_before_replace: bool | None = None
    replace_on_changes: tuple[str, ...] = ()


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict
    outputs: dict
    id: str = ""
    urn: str = ""
    options: Options = field(default_factory=Options)

    @property
    def parent_type(self) -> str:
        """Type of the parent component, read from the URN (`parent$child` type chain)."""
        qualified = self.urn.split("::")[2]
        chain = qualified.split("$")
        return chain[-2] if len(chain) > 1 else ""

    def json(self, key: str) -> Any:
        """An input holding a JSON document, parsed; a secret one is unwrapped first."""
        value = unwrap_secret(self.inputs[key])
        return json.loads(value) if isinstance(value, str) else value


def unwrap_secret(value: Any) -> Any:
    """The value inside a secret marker, or `value` itself."""
    return value["value"] if isinstance(value, dict) and SECRET_SIG in value else value


def strings(value: Any, secret: bool = False) -> Iterator[tuple[str, bool]]:
    """Every string in a resource's inputs, and whether it travels inside a secret marker.
    (Secret in Pulumi's state is not secret in AWS: a job definition shows its properties.)"""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            yield from strings(value.get("value"), True)
            return
        for item in value.values():
            yield from strings(item, secret)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item, secret)
    elif isinstance(value, str):
        yield value, secret


def _auto_name(name: str) -> str:
    # Pulumi appends a random suffix to auto-named resources; a stable one keeps tests deterministic.
    return f"{name}-{hashlib.sha1(name.encode()).hexdigest()[:7]}"


def _outputs_for(type_: str, name: str, inputs: dict) -> tuple[str, dict]:
    """The id and the outputs AWS would return for a created resource."""
    out = dict(inputs)
    region, account = REGION, ACCOUNT
    if type_ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or _auto_name(name)
        out.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
        return bucket, out
    if type_ == "aws:sqs/queue:Queue":
        queue = inputs.get("name") or _auto_name(name)
        url = f"https://sqs.{region}.amazonaws.com/{account}/{queue}"
        out.update(name=queue, arn=f"arn:aws:sqs:{region}:{account}:{queue}", url=url)
        return url, out
    if type_ == "aws:ecr/repository:Repository":
        repo = inputs["name"]
        out.update(arn=f"arn:aws:ecr:{region}:{account}:repository/{repo}", registryId=account,
                   repositoryUrl=f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}")
        return repo, out
    if type_ == "docker:index/image:Image":
        image_name = inputs["imageName"]
        digest = hashlib.sha256(image_name.encode()).hexdigest()
        out.update(repoDigest=f"{image_name.rsplit(':', 1)[0]}@sha256:{digest}", baseImageName=image_name)
        return image_name, out
    if type_ == "aws:cloudwatch/logGroup:LogGroup":
        group = inputs.get("name") or _auto_name(name)
        out.update(name=group, arn=f"arn:aws:logs:{region}:{account}:log-group:{group}")
        return group, out
    if type_ == "aws:iam/role:Role":
        role = inputs.get("name") or _auto_name(name)
        out.update(name=role, arn=f"arn:aws:iam::{account}:role/{role}", uniqueId=f"AROA{role[:8].upper()}")
        return role, out
    if type_ == "aws:ec2/securityGroup:SecurityGroup":
        return f"sg-0{hashlib.sha1(name.encode()).hexdigest()[:12]}", out
    if type_.startswith("aws:batch/"):
        kind = {"aws:batch/computeEnvironment:ComputeEnvironment": "compute-environment",
                "aws:batch/jobQueue:JobQueue": "job-queue",
                "aws:batch/jobDefinition:JobDefinition": "job-definition"}[type_]
        resource = inputs.get("name") or _auto_name(name)
        arn = f"arn:aws:batch:{region}:{account}:{kind}/{resource}"
        if kind == "job-definition":
            out.update(revision=1, arnPrefix=arn)
            arn += ":1"
        out.update(name=resource, arn=arn)
        return arn, out
    if type_ == "aws:dynamodb/table:Table":
        out.update(arn=f"arn:aws:dynamodb:{region}:{account}:table/{inputs['name']}")
        return inputs["name"], out
    if type_ == "aws:sns/topic:Topic":
        arn = f"arn:aws:sns:{region}:{account}:{inputs['name']}"
        out.update(arn=arn)
        return arn, out
    if type_ == "aws:lambda/function:Function":
        function = inputs["name"]
        arn = f"arn:aws:lambda:{region}:{account}:function:{function}"
        out.update(arn=arn, invokeArn=f"arn:aws:apigateway:{region}:lambda:path/functions/{arn}/invocations")
        return function, out
    if type_ == "aws:ssm/parameter:Parameter":
        out.update(arn=f"arn:aws:ssm:{region}:{account}:parameter/{inputs['name'].lstrip('/')}")
        return inputs["name"], out
    if type_ == "aws:scheduler/scheduleGroup:ScheduleGroup":
        group = inputs.get("name") or _auto_name(name)
        out.update(name=group, arn=f"arn:aws:scheduler:{region}:{account}:schedule-group/{group}")
        return group, out
    if type_ == "aws:scheduler/schedule:Schedule":
        schedule = inputs.get("name") or _auto_name(name)
        group = inputs.get("groupName", "default")
        out.update(name=schedule, arn=f"arn:aws:scheduler:{region}:{account}:schedule/{group}/{schedule}")
        return schedule, out
    if type_ == "aws:cloudwatch/eventRule:EventRule":
        rule = inputs.get("name") or _auto_name(name)
        out.update(name=rule, arn=f"arn:aws:events:{region}:{account}:rule/{rule}")
        return rule, out
    if type_ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        alarm = inputs.get("name") or _auto_name(name)
        out.update(name=alarm, arn=f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}")
        return alarm, out
    return f"{name}-id", out


class PipelineMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.created: list[Registered] = []
        self.calls: list[MockCallArgs] = []
        self.options: dict[str, Options] = {}  # by logical name, filled in by RecordingMonitor

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        id_, outputs = _outputs_for(args.typ, args.name, dict(args.inputs))
        self.created.append(Registered(args.typ, args.name, dict(args.inputs), outputs, id_,
                                       options=self.options.get(args.name, Options())))
        return id_, outputs

    def call(self, args: MockCallArgs) -> tuple[dict, list]:
        self.calls.append(args)
        token = args.token
        if token == "aws:index/getRegion:getRegion":
            return {"region": REGION, "name": REGION, "id": REGION, "endpoint": f"ec2.{REGION}.amazonaws.com",
                    "description": "US East (N. Virginia)"}, []
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDAMOCK",
                    "id": ACCOUNT}, []
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com", "userName": "AWS",
                    "password": "mock-ecr-password", "authorizationToken": "QVdTOm1vY2s=",
                    "expiresAt": "2030-01-01T00:00:00Z", "id": REGION}, []
        if token == "aws:ec2/getVpc:getVpc":
            return {"id": DEFAULT_VPC, "default": True, "cidrBlock": "172.31.0.0/16",
                    "arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/{DEFAULT_VPC}"}, []
        if token == "aws:ec2/getSubnets:getSubnets":
            # The default VPC also holds a subnet someone added (private, or in a Local Zone):
            # only a filter on default-for-az leaves it out.
            filters = {f["name"]: f["values"] for f in args.args.get("filters", [])}
            default_only = filters.get("default-for-az") == ["true"]
            ids = [*DEFAULT_SUBNETS, *([] if default_only else [ADDED_SUBNET])]
            return {"ids": ids if filters.get("vpc-id") == [DEFAULT_VPC] else [], "id": REGION}, []
        if token == "aws:ec2/getSubnet:getSubnet":
            return {"id": args.args["id"], "vpcId": CUSTOM_VPC}, []
        if token == "aws:ssm/getParameter:getParameter":  # only Powertools' public layer parameters
            name = args.args["name"]
            _, architecture, runtime, _release = name.rsplit("/", 3)
            value = (f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-"
                     f"{runtime.replace('.', '')}-{architecture}:{MOCK_POWERTOOLS_LAYER}")
            # The provider marks `value` secret; the program must read `insecureValue`, so `value`
            # here is something no test would accept as a layer ARN.
            return {"name": name, "value": "read-insecureValue-instead", "insecureValue": value,
                    "type": "String", "version": 1,
                    "arn": f"arn:aws:ssm:{REGION}::parameter{name}", "withDecryption": True, "id": name}, []
        raise NotImplementedError(f"unmocked call {token}")


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping the options of each registration (the stock one hands
    the mocks the inputs alone), so tests can check what a replacement or a delete would do."""

    mocks: PipelineMocks

    def RegisterResource(self, request):  # noqa: N802 (the gRPC method's name)
        self.mocks.options[request.name] = Options(
            protect=request.protect if request.HasField("protect") else None,
            retain_on_delete=request.retainOnDelete if request.HasField("retainOnDelete") else None,
            delete_before_replace=request.deleteBeforeReplace if request.deleteBeforeReplaceDefined else None,
            replace_on_changes=tuple(request.replaceOnChanges),
        )
        return super().RegisterResource(request)


@dataclass
class Deployment:
    mocks: PipelineMocks
    result: Any = None
    exports: dict = field(default_factory=dict)

    @property
    def resources(self) -> list[Registered]:
        return self.mocks.created

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name_contains: str = "") -> Registered:
        found = [r for r in self.of_type(type_) if name_contains in r.name]
        assert len(found) == 1, f"expected one {type_} named *{name_contains}*, got {[r.name for r in found]}"
        return found[0]

    def policies(self) -> Iterator[tuple[str, dict]]:
        """Every policy document the program creates: (where, parsed document)."""
        for r in self.resources:
            if r.type == "aws:iam/role:Role":
                yield f"{r.name} trust", json.loads(r.inputs["assumeRolePolicy"])
            elif r.type in ("aws:iam/rolePolicy:RolePolicy", "aws:s3/bucketPolicy:BucketPolicy",
                            "aws:sqs/queuePolicy:QueuePolicy", "aws:sns/topicPolicy:TopicPolicy"):
                yield r.name, json.loads(r.inputs["policy"])

    def identity_policies(self) -> dict[str, dict]:
        return {r.name: json.loads(r.inputs["policy"]) for r in self.of_type("aws:iam/rolePolicy:RolePolicy")}


def resolve(value: Any) -> Any:
    """The resolved value of an Output (after `deploy` has returned)."""
    return _sync_await(pulumi.Output.from_input(value).future())


def deploy(program: Callable[[], Any], config: Mapping[str, Any] | None = None,
           secrets: Mapping[str, str] | None = None) -> Deployment:
    """Run `program` under mocks with the given `arti4207:` config (keys without prefix)."""
    all_config = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    all_config.update({f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()})
    pulumi.runtime.set_all_config(all_config, [f"{PROJECT}:{k}" for k in (secrets or {})])
    mocks = PipelineMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=False, monitor=RecordingMonitor(mocks))
    exports: dict = {}
    original_export = pulumi.export
    pulumi.export = lambda name, value: exports.__setitem__(name, value)  # read what __main__ exports
    deployment = Deployment(mocks, exports=exports)
    try:
        def run() -> Any:
            deployment.result = program()
        _sync_await(run_pulumi_func(run))
    finally:
        pulumi.export = original_export
    monitor: Any = pulumi.runtime.settings.get_monitor()  # set_mocks' MockMonitor
    urns = monitor.get_registered_resources()
    by_name = {urn.rsplit("::", 1)[1]: urn for urn in urns}
    for r in deployment.resources:
        r.urn = by_name.get(r.name, "")
    deployment.exports = {k: resolve(v) for k, v in exports.items()}
    return deployment


def stack_config(**overrides: Any) -> dict:
    """Pulumi.dev.yaml's `arti4207:` settings (as the CLI would hand them over), with overrides."""
    import yaml

    from components.config import ROOT
    data = yaml.safe_load((ROOT / f"Pulumi.{STACK}.yaml").read_text())["config"]
    values = {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith(f"{PROJECT}:")}
    values.update(overrides)
    return {k: (json.dumps(v) if isinstance(v, (bool, list)) else str(v)) for k, v in values.items()}


def schema_problems(deployment: Deployment) -> list[str]:
    """Every input the provider's schema does not know, as `type name: path`.

    The mocks accept any input, and the SDK passes a misspelt key of a nested argument (a dict)
    through untranslated, where the provider would ignore or refuse it. This reads the names and
    nested types the SDK's own `...Args` classes declare, for every registered resource."""
    import importlib

    from pulumi import _types

    def args_class(token: str) -> type | None:
        package, module_path, name = token.split(":")
        module_name = module_path.split("/")[0]
        package_module = {"aws": "pulumi_aws", "docker": "pulumi_docker"}.get(package)
        if package_module is None:  # this program's own components
            return None
        module = importlib.import_module(package_module if module_name == "index" else
                                         f"{package_module}.{module_name}_" if module_name == "lambda" else
                                         f"{package_module}.{module_name}")
        # From the resource's own module, where the SDK names it `<Name>InitArgs` when a nested
        # type already has the name `<Name>Args` (pulumi_aws.s3.BucketVersioningArgs is the
        # Bucket's `versioning` argument).
        own = importlib.import_module(getattr(module, name).__module__)
        return getattr(own, f"{name}InitArgs", None) or getattr(own, f"{name}Args")

    def concrete(hint: Any) -> Any:
        """The input type or plain type of a hint: Union[X, Awaitable[X], Output[None]] -> X."""
        if typing.get_origin(hint) is typing.Union:
            return concrete(typing.get_args(hint)[0])
        return hint

    def check(value: Any, hint: Any, path: str) -> Iterator[str]:
        hint = concrete(hint)
        origin = typing.get_origin(hint)
        if origin in (list, collections.abc.Sequence) and isinstance(value, list):
            for i, item in enumerate(value):
                yield from check(item, typing.get_args(hint)[0], f"{path}[{i}]")
        elif origin in (dict, collections.abc.Mapping) and isinstance(value, dict):
            for key, item in value.items():  # a free-form map: any key
                yield from check(item, typing.get_args(hint)[1], f"{path}.{key}")
        elif isinstance(hint, type) and _types.is_input_type(hint) and isinstance(value, dict):
            known = _types.input_type_types(hint)
            for key, item in unwrap_secret(value).items():
                if key not in known:
                    yield f"{path}.{key}"
                else:
                    yield from check(item, known[key], f"{path}.{key}")

    problems = []
    for resource in deployment.resources:
        args = args_class(resource.type)
        if args is not None:
            problems += [f"{resource.type} {resource.name}: {p.lstrip('.')}"
                         for p in check(resource.inputs, args, "")]
    return problems


def api_document_problems(document: Any, shape: Any, path: str = "", pascal: bool = False) -> Iterator[str]:
    """Every key of a JSON document the AWS API shape (botocore's model) does not have.

    For the inputs that are API documents in a string (a Batch job definition's
    containerProperties) the provider's schema says nothing of their keys. `pascal`: the member
    names as the SDKs spell them (EventBridge Scheduler's universal targets), not as the wire."""
    if shape.type_name == "structure" and isinstance(document, dict):
        members = {(name[0].upper() + name[1:]) if pascal else name: member for name, member in shape.members.items()}
        for key, value in document.items():
            if key not in members:
                yield f"{path}.{key}".lstrip(".")
            else:
                yield from api_document_problems(value, members[key], f"{path}.{key}", pascal)
    elif shape.type_name == "list" and isinstance(document, list):
        for i, item in enumerate(document):
            yield from api_document_problems(item, shape.member, f"{path}[{i}]", pascal)
    elif shape.type_name == "map" and isinstance(document, dict):
        for key, value in document.items():
            yield from api_document_problems(value, shape.value, f"{path}.{key}", pascal)
