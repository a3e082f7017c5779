"""The composition root: every service is built here, from settings, and nowhere else.

The command line (`podium dispatcher|actor|policy|ledger|dev`) and the tests build services
through these functions, so what runs in production is what the tests run. This is also the one
place that reads the local stack's state file: when `PODIUM_KAFKA_BOOTSTRAP`,
`PODIUM_DATABASE_URL`, `PODIUM_POLICY_SIGNING_KEY`, `PODIUM_POLICY_VERIFY_KEYS`,
`PODIUM_LEDGER_ANCHOR_KEY(_FILE)` or `PODIUM_API_URL` are unset, the addresses and the dev keys
`podium stack up` recorded are the defaults. A dev decision key (id `dev-...`) is accepted only
when Kafka is the local stack's (`on_dev_stack`). Below this module nothing knows the dev stack
exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from actors.actor import ActorService
from actors.catalog_tools import CatalogTools
from actors.dispatcher import DispatcherService
from actors.settings import ActorSettings, DispatcherSettings
from actors.tools import PythonSandbox
from ledger.anchors import (
    AnchorSigner,
    new_private_hex,
    private_key_from_hex,
    public_key_from_hex,
    read_key_file,
)
from ledger.api import ApprovalDecided, ApprovalUnknown, Decider
from ledger.client import LedgerClient
from ledger.service import LedgerService
from ledger.settings import LedgerSettings
from manifests.watcher import CatalogWatcher
from podium.core.errors import PermanentError
from podium.core.lifecycle import Service
from podium.core.settings import DatabaseSettings, KafkaSettings, load_settings
from podium.stack.state import load_state, save_state, stack_dir, state_file
from policy_service.approvals import ApprovalAlreadyDecided, ApprovalNotFound, decide_approval
from policy_service.client import Authorizer
from policy_service.decision import Pricer
from policy_service.rules_source import RulesSource, WatchedRules
from policy_service.service import PolicyService
from policy_service.settings import (
    SIGNING_KEY_FILE_ENV,
    PolicySettings,
    resolve_signing_key,
    resolve_verify_keys,
)
from scheduler.service import SchedulerService
from scheduler.settings import SchedulerSettings
from topics.names import TopicNames

log = logging.getLogger(__name__)

API_URL_ENV = "PODIUM_API_URL"
API_TOKEN_ENV = "PODIUM_API_TOKEN"


# --- settings, with the local stack's addresses as defaults ----------------------------------


def kafka_settings() -> KafkaSettings:
    state = load_state()
    defaults = {"bootstrap": state.kafka.bootstrap} if state.kafka else {}
    return load_settings(KafkaSettings, **defaults)


def database_settings() -> DatabaseSettings:
    state = load_state()
    defaults = {"url": state.postgres.dsn} if state.postgres else {}
    return load_settings(DatabaseSettings, **defaults)


def policy_settings() -> PolicySettings:
    """`PODIUM_POLICY_*`, with the local stack's dev key pair as the default keys."""
    state = load_state()
    defaults: dict[str, str] = {}
    if state.policy_signing_key and SIGNING_KEY_FILE_ENV not in os.environ:
        defaults["signing_key"] = state.policy_signing_key
    if state.policy_verify_key:
        defaults["verify_keys"] = state.policy_verify_key
    return load_settings(PolicySettings, **defaults)


def on_dev_stack(kafka: KafkaSettings) -> bool:
    """True when `kafka` is the broker the local stack runs (the only place for dev keys)."""
    state = load_state()
    return state.kafka is not None and kafka.bootstrap == state.kafka.bootstrap


def anchor_signer(settings: LedgerSettings) -> AnchorSigner:
    """The key the ledger signs its anchors with: `PODIUM_LEDGER_ANCHOR_KEY`, else the file
    `PODIUM_LEDGER_ANCHOR_KEY_FILE` names, else the dev stack's key (made when missing).
    Outside the dev stack a missing key stops the service."""
    if settings.anchor_key is not None:
        text, what = settings.anchor_key.get_secret_value(), "PODIUM_LEDGER_ANCHOR_KEY"
    elif settings.anchor_key_file is not None:
        text = read_key_file(settings.anchor_key_file)
        what = f"PODIUM_LEDGER_ANCHOR_KEY_FILE {settings.anchor_key_file}"
    elif state_file().exists():
        state = load_state()
        if state.ledger_anchor_key is None:
            state.ledger_anchor_key = new_private_hex()
            save_state(state)
        text, what = state.ledger_anchor_key, f"ledger_anchor_key of {state_file()}"
    else:
        raise PermanentError(
            "the ledger has no key to sign its anchors: set PODIUM_LEDGER_ANCHOR_KEY (64 hex "
            "digits of an Ed25519 private key, e.g. from `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`) or PODIUM_LEDGER_ANCHOR_KEY_FILE"
        )
    return AnchorSigner(private_key_from_hex(text, what=what))


def anchor_public_key(settings: LedgerSettings) -> Ed25519PublicKey:
    """What `podium audit verify` checks anchors with: `PODIUM_LEDGER_ANCHOR_PUBLIC_KEY`, else
    the public half of `anchor_signer`'s key."""
    if settings.anchor_public_key is not None:
        return public_key_from_hex(
            settings.anchor_public_key, what="PODIUM_LEDGER_ANCHOR_PUBLIC_KEY"
        )
    return anchor_signer(settings).private.public_key()


def topic_names(kafka: KafkaSettings) -> TopicNames:
    return TopicNames(kafka.topic_prefix)


# --- the ledger API's address and token (the command line's client) ---------------------------


def api_token_file() -> Path:
    return stack_dir() / "api-token"


def save_api_token(token: str) -> Path:
    """Write a token where `ledger_client` finds it (mode 600)."""
    path = api_token_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)
    return path


def ledger_client() -> LedgerClient:
    """`PODIUM_API_URL` (else the URL `podium ledger` recorded in the stack's state file) and
    `PODIUM_API_TOKEN` (else the token `podium token create --save` wrote)."""
    url = os.environ.get(API_URL_ENV) or load_state().api_url
    if not url:
        raise PermanentError(
            f"the ledger API is not known: set {API_URL_ENV}, or start `podium ledger` on the "
            "local stack (it records its URL)"
        )
    token = os.environ.get(API_TOKEN_ENV, "")
    if not token and api_token_file().exists():
        token = api_token_file().read_text().strip()
    if not token:
        raise PermanentError(
            f"no API token: set {API_TOKEN_ENV}, or run `podium token create --scope audit:read "
            "--scope spend:read --save`"
        )
    return LedgerClient(url.rstrip("/"), token)


def _record_api_url(url: str) -> None:
    """The dev stack's state file learns where the API listens (when there is a dev stack)."""
    if state_file().exists():
        state = load_state()
        state.api_url = url
        save_state(state)


# --- the services ---------------------------------------------------------------------------


def kafka_decider(kafka: KafkaSettings, names: TopicNames) -> Decider:
    """Approval decisions of the ledger API go through the policy service (into Kafka)."""

    async def decide(approval_id: str, *, granted: bool, decided_by: str, reason: str) -> None:
        try:
            await decide_approval(
                kafka, names, approval_id, granted=granted, decided_by=decided_by, reason=reason
            )
        except ApprovalNotFound as exc:
            raise ApprovalUnknown(str(exc)) from None
        except ApprovalAlreadyDecided as exc:
            raise ApprovalDecided(str(exc)) from None

    return decide


def policy_service(
    kafka: KafkaSettings,
    settings: PolicySettings,
    database: DatabaseSettings,
    *,
    rules: RulesSource | None = None,
    pricer: Pricer | None = None,
    db_schema: str = "policy",
) -> PolicyService:
    """The policy service; its rules are the applied manifests' unless `rules` is given (tests
    and benchmarks pass fixed rules, a price list and a schema of their own)."""
    names = topic_names(kafka)
    return PolicyService(
        kafka,
        names,
        settings,
        signing_key=resolve_signing_key(settings, dev_stack=on_dev_stack(kafka)),
        database_url=database.url,
        rules=rules or WatchedRules(kafka, names),
        pricer=pricer,
        db_schema=db_schema,
    )


def ledger_service(
    settings: LedgerSettings,
    database: DatabaseSettings,
    kafka: KafkaSettings,
    *,
    ingest: bool = True,
    record_api_url: bool = True,
) -> LedgerService:
    return LedgerService(
        settings,
        database,
        kafka,
        ingest=ingest,
        decider=kafka_decider(kafka, topic_names(kafka)),
        on_api_url=_record_api_url if record_api_url else None,
        anchor_signer=anchor_signer(settings) if ingest else None,
    )


class DispatcherRole:
    """`podium dispatcher`: the catalog watcher and the dispatcher, in one lifespan."""

    name = "dispatcher"

    def __init__(self, kafka: KafkaSettings, settings: DispatcherSettings) -> None:
        self._kafka = kafka
        self._settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        names = topic_names(self._kafka)
        watcher = CatalogWatcher(self._kafka, names)
        await watcher.start()
        try:
            service = DispatcherService(
                self._kafka, names, settings=self._settings, catalog=watcher
            )
            await service.run(stop)
        finally:
            await watcher.stop()


class SchedulerRole:
    """`podium scheduler`: the catalog watcher and one replica of the scheduler group."""

    name = "scheduler"

    def __init__(self, kafka: KafkaSettings, settings: SchedulerSettings) -> None:
        self._kafka = kafka
        self._settings = settings
        self.service: SchedulerService | None = None

    async def run(self, stop: asyncio.Event) -> None:
        names = topic_names(self._kafka)
        watcher = CatalogWatcher(self._kafka, names)
        await watcher.start()
        try:
            self.service = SchedulerService(
                self._kafka, names, settings=self._settings, catalog=watcher
            )
            await self.service.run(stop)
        finally:
            await watcher.stop()


class ActorRole:
    """`podium actor AGENT` (and the actors of `podium dev`): the catalog watcher, the policy
    client and the actors, in one lifespan.

    `agents=None` serves every agent of every applied system and, with `follow_catalog`, starts
    actors for agents applied later (actors of agents that disappear run until the process stops).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        agents: list[str] | None,
        settings: ActorSettings,
        policy: PolicySettings,
        *,
        dispatcher: DispatcherSettings | None = None,
        extra: list[Service] | None = None,
        follow_catalog: bool = False,
    ) -> None:
        self.name = "actors" if agents is None else f"actor:{','.join(agents)}"
        self._kafka = kafka
        self._agents = agents
        self._settings = settings
        self._verify_keys = resolve_verify_keys(policy, dev_stack=on_dev_stack(kafka))
        self._dispatcher = dispatcher
        self._extra = extra or []
        self._follow = follow_catalog

    async def run(self, stop: asyncio.Event) -> None:
        kafka = self._kafka
        names = topic_names(kafka)
        watcher = CatalogWatcher(kafka, names)
        await watcher.start()
        authorizer: Authorizer | None = None
        try:
            authorizer = Authorizer(
                kafka,
                names,
                instance_id=f"actor-{uuid.uuid4().hex[:8]}",
                verify_keys=self._verify_keys,
                timeout_s=self._settings.policy_timeout_s,
            )
            await authorizer.start()
            tools = CatalogTools(watcher, python=PythonSandbox.from_settings(self._settings))
            async with asyncio.TaskGroup() as group:
                for service in self._extra:
                    group.create_task(service.run(stop), name=service.name)
                if self._dispatcher is not None:
                    dispatcher = DispatcherService(
                        kafka, names, settings=self._dispatcher, catalog=watcher
                    )
                    group.create_task(dispatcher.run(stop), name=dispatcher.name)
                started: set[str] = set()
                while not stop.is_set():
                    wanted = (
                        list(self._agents)
                        if self._agents is not None
                        else watcher.catalog.agents_in_systems()
                    )
                    for agent in wanted:
                        if agent in started:
                            continue
                        if agent not in watcher.catalog.agents and self._agents is not None:
                            log.warning("agent %s is not applied (yet); serving it anyway", agent)
                        actor = ActorService(
                            kafka,
                            names,
                            agent,
                            settings=self._settings,
                            catalog=watcher,
                            gate=authorizer,
                            tools=tools,
                        )
                        started.add(agent)
                        log.info("starting actor %s", agent)
                        group.create_task(actor.run(stop), name=actor.name)
                    if not self._follow:
                        await stop.wait()
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(1.0):
                            await stop.wait()
        finally:
            if authorizer is not None:
                await authorizer.stop()
            await watcher.stop()


def dev_role(kafka: KafkaSettings) -> ActorRole:
    """`podium dev`: the dispatcher, an actor per applied agent, the policy service, the ledger
    and the scheduler, in one process."""
    policy = policy_settings()
    database = database_settings()
    extra: list[Service] = [
        policy_service(kafka, policy, database),
        ledger_service(load_settings(LedgerSettings), database, kafka),
        SchedulerRole(kafka, load_settings(SchedulerSettings)),
    ]
    return ActorRole(
        kafka,
        None,
        load_settings(ActorSettings),
        policy,
        dispatcher=load_settings(DispatcherSettings),
        extra=extra,
        follow_catalog=True,
    )
