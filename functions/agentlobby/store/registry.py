"""The agent registry in Firestore: agents and their endpoints, lobbies, memberships.

Collections: `agents/{name}`, `lobbies/{name}`, `memberships/{lobby}__{agent}`. Each document
is written by one actor at a time (the CLI or the stack), so plain sets suffice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from agentlobby.errors import InvalidMessage, UnknownAgent, UnknownLobby
from agentlobby.messages import AgentName, LobbyName, Wire, now
from agentlobby.store.clients import firestore_client, translated

SettingKind = Literal["int", "float", "str", "bool"]
SettingValue = int | float | str | bool


class DeclaredSetting(Wire):
    """A setting the agent's module declares (agents.spec.Setting), as the registry keeps it:
    what `agents set` checks a value against without importing the agent."""

    name: str
    kind: SettingKind
    default: SettingValue
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    env: str | None = None

    def parse(self, raw: str) -> SettingValue:
        """The value `raw` means for this setting; InvalidMessage says why it does not fit."""
        parsers: dict[str, Callable[[str], SettingValue]] = {
            "int": int,
            "float": float,
            "str": str,
            "bool": _boolean,
        }
        try:
            value = parsers[self.kind](raw)
        except ValueError:
            raise InvalidMessage(
                f"{self.name} takes {'a whole number' if self.kind == 'int' else 'a ' + self.kind}"
                f", not {raw!r}"
            ) from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise InvalidMessage(f"{self.name} must be at least {self.minimum:g}, not {raw}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidMessage(f"{self.name} must be at most {self.maximum:g}, not {raw}")
        return value


def _boolean(raw: str) -> bool:
    if raw.lower() in ("true", "yes", "1", "on"):
        return True
    if raw.lower() in ("false", "no", "0", "off"):
        return False
    raise ValueError(raw)


class AgentRecord(Wire):
    """An agent as the registry knows it: where its function answers and how it is tuned."""

    v: int = 1
    name: AgentName
    endpoint: Annotated[str, Field(pattern=r"^https?://")]
    description: str = ""
    listens_to: tuple[str, ...] = ()
    declared: tuple[DeclaredSetting, ...] = ()
    settings: dict[str, Any] = Field(default_factory=dict)
    push_auth_service_account: str | None = None
    # A remote A2A agent's base URL: the `remote` function forwards its messages there.
    a2a_url: Annotated[str, Field(pattern=r"^https?://", max_length=2000)] | None = None
    registered_at: datetime


class LobbyRecord(Wire):
    v: int = 1
    name: LobbyName
    created_at: datetime


class MembershipRecord(Wire):
    v: int = 1
    lobby: LobbyName
    agent: AgentName
    subscription: str
    entered_at: datetime


def membership_id(lobby: str, agent: str) -> str:
    return f"{lobby}__{agent}"


@translated
class Registry:
    """Reads and writes the registry documents of one project."""

    def __init__(self, project: str) -> None:
        self._db = firestore_client(project)

    def put_agent(self, record: AgentRecord) -> None:
        self._db.collection("agents").document(record.name).set(record.model_dump(mode="json"))

    def agent(self, name: str) -> AgentRecord:
        snap = self._db.collection("agents").document(name).get()
        if not snap.exists:
            raise UnknownAgent(name, [a.name for a in self.agents()])
        return AgentRecord.model_validate(snap.to_dict())

    def agents_named(self, names: list[str]) -> list[AgentRecord]:
        """The registered agents among `names`, in one round trip; unknown names are left out."""
        if not names:
            return []
        refs = [self._db.collection("agents").document(name) for name in names]
        snaps = self._db.get_all(refs)
        return [AgentRecord.model_validate(s.to_dict()) for s in snaps if s.exists]

    def agents(self) -> list[AgentRecord]:
        docs = self._db.collection("agents").stream()
        return sorted((AgentRecord.model_validate(d.to_dict()) for d in docs), key=lambda a: a.name)

    def set_setting(self, agent: str, key: str, raw: str) -> AgentRecord:
        """Change one of an agent's declared settings, checked against its declaration; agents
        read it at their next message."""
        record = self.agent(agent)
        declared = {setting.name: setting for setting in record.declared}
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none (its module declares no settings)"
            raise InvalidMessage(f"agent {agent!r} has no setting {key!r}; its settings: {known}")
        value = declared[key].parse(raw)
        updated = record.model_copy(update={"settings": {**record.settings, key: value}})
        self.put_agent(updated)
        return updated

    def put_lobby(self, name: str) -> LobbyRecord:
        ref = self._db.collection("lobbies").document(name)
        snap = ref.get()
        if snap.exists:
            return LobbyRecord.model_validate(snap.to_dict())
        record = LobbyRecord(name=name, created_at=now())
        ref.set(record.model_dump(mode="json"))
        return record

    def lobby(self, name: str) -> LobbyRecord:
        snap = self._db.collection("lobbies").document(name).get()
        if not snap.exists:
            raise UnknownLobby(name)
        return LobbyRecord.model_validate(snap.to_dict())

    def lobbies(self) -> list[LobbyRecord]:
        docs = self._db.collection("lobbies").stream()
        return sorted((LobbyRecord.model_validate(d.to_dict()) for d in docs), key=lambda x: x.name)

    def put_membership(self, record: MembershipRecord) -> None:
        doc = self._db.collection("memberships").document(membership_id(record.lobby, record.agent))
        doc.set(record.model_dump(mode="json"))

    def delete_membership(self, lobby: str, agent: str) -> bool:
        ref = self._db.collection("memberships").document(membership_id(lobby, agent))
        existed = bool(ref.get().exists)
        ref.delete()
        return existed

    def members(self, lobby: str) -> list[str]:
        """The names of the agents in one lobby."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._db.collection("memberships").where(filter=FieldFilter("lobby", "==", lobby))
        return sorted(str(snap.get("agent")) for snap in query.stream())

    def memberships(self) -> list[MembershipRecord]:
        docs = self._db.collection("memberships").stream()
        records = (MembershipRecord.model_validate(d.to_dict()) for d in docs)
        return sorted(records, key=lambda m: (m.lobby, m.agent))

    def members_since(self, lobby: str) -> dict[str, tuple[datetime, frozenset[str]]]:
        """Each member of a lobby: when it entered and the kinds it listens to."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self._db.collection("memberships").where(filter=FieldFilter("lobby", "==", lobby))
        entered = {
            record.agent: record.entered_at
            for record in (MembershipRecord.model_validate(s.to_dict()) for s in query.stream())
        }
        return {
            agent.name: (entered[agent.name], frozenset(agent.listens_to))
            for agent in self.agents_named(sorted(entered))
        }
