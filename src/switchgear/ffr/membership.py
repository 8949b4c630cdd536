"""FFR group membership: enrolling controllers, and letting them go with their settings back."""

from __future__ import annotations

import uuid

from switchgear.core.ffr import Programme
from switchgear.core.model import CommandState, DeviceState, FirmwareCommand, Json
from switchgear.core.pcconfig import default_config
from switchgear.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NothingEnrolled,
    NothingMatched,
    SwitchgearError,
)
from switchgear.ffr.enrol import plan
from switchgear.ffr.live import OpenEvent
from switchgear.ffr.model import Group
from switchgear.runtime import Runtime

GROUPS_KEY = "ffr:groups"
GROUP_ID_KEY = "ffr:group-id:"  # + N: group id N is taken (by any worker)
MEMBER_KEY = "ffr:member/"  # + device id: the group it is in (claimed by any worker)
PEER_GROUPS = "ffr.groups"  # told to the other workers when the groups change


class GroupNotFound(NotFound):
    """FFR group not found."""


class EventInProgress(Conflict):
    """The group has an FFR event whose logging window still runs."""


class Membership:
    """Groups and the devices in them (the service's half that owns no events)."""

    rt: Runtime
    groups: dict[int, Group]
    member: dict[int, int]  # device id -> group id
    held: dict[int, int]  # device id -> group id: joining or leaving it on this worker
    open: dict[int, OpenEvent]  # group id -> its running event

    def _add_group(self, g: Group) -> None:
        self.groups[g.id] = g
        for i in g.device_ids:
            self.member[i] = g.id

    async def _save_groups(self) -> None:
        """Store every group durably, then tell the other workers (they take the list)."""
        groups = [g.to_json() for g in self.groups.values()]
        self.rt.journal.put_meta(GROUPS_KEY, groups)
        await self.rt.journal.flush()
        await self.rt.peers.tell(PEER_GROUPS, {"groups": groups})

    async def _peer_groups(self, body: Json) -> None:
        """Another worker changed the groups: take its list (events stay as they are)."""
        groups = body.get("groups") if isinstance(body, dict) else None
        if not isinstance(groups, list):
            return
        self.groups.clear()
        self.member.clear()
        for g in groups:
            self._add_group(Group.from_json(g))

    async def _new_group_id(self) -> tuple[int, str]:
        """The next group id, claimed in the store: two requests (on one worker or on two)
        never give the same one. Each claims with its own token, so it knows the id it took."""
        token = uuid.uuid4().hex
        gid = max(self.groups, default=0) + 1
        while await self.rt.store.claim(f"{GROUP_ID_KEY}{gid}", token) != token:
            gid += 1
        return gid, token

    async def create_group(
        self, account_id: int, name: str, p: Programme, contracted_kw: float,
        devices: list[int], field: str = "device_ids",
    ) -> Group:  # fmt: skip
        """Enrol the devices that can serve the programme; refuse the rest with reasons
        (NothingEnrolled, and no group, when every one is refused; `field` selected them)."""
        if not name or len(name) > 200:
            raise InvalidInput("name must be 1 to 200 characters", field="name")
        if not 0 < contracted_kw < 1e9:
            raise InvalidInput("contracted_kw must be a positive number", field="contracted_kw")
        if not devices:
            raise NothingMatched("no device matched: the group names no device", field=field)
        gid, token = await self._new_group_id()
        g = Group(gid, account_id, name, p, contracted_kw, [], [], self.rt.clock.now())
        try:
            for device_id in dict.fromkeys(devices):
                reason = await self._enrol(g, device_id)
                if reason is not None:
                    g.refused.append({"device_id": device_id, "reason": reason})
                    continue
                g.device_ids.append(device_id)
            if not g.device_ids:  # no group: its id is not used up
                await self.rt.store.take_meta(f"{GROUP_ID_KEY}{gid}", token)
                raise NothingEnrolled(none_enrolled(g.refused), g.refused, field=field)
            self._add_group(g)
        finally:
            for i in g.device_ids:
                self.held.pop(i, None)
        await self._save_groups()
        return g

    async def _enrol(self, g: Group, device_id: int) -> str | None:
        """Enrol one device (held for `g` until the group is added), or why not: it is
        held before the first await and claimed in the store, so whatever the interleaving
        of requests, here or on another worker, a device joins one group at most."""
        try:
            device = self.rt.engine.device(g.account_id, device_id)
        except NotFound:
            return "device not found"
        taken = self.member.get(device_id, self.held.get(device_id))
        settings = plan(device, g.programme, taken)
        if isinstance(settings, str):
            return settings
        self.held[device_id] = g.id
        try:
            stored = await self.rt.store.claim(member_key(device_id), g.id)
        except BaseException:
            self.held.pop(device_id, None)
            raise
        if stored != g.id:  # another worker's group has it
            self.held.pop(device_id, None)
            return f"already in FFR group {stored}"
        try:
            reason = await self._configure(g, device_id, settings)
        except BaseException:
            await self._let_go(device_id, g.id)
            raise
        if reason is not None:
            await self._let_go(device_id, g.id)
        return reason

    async def _let_go(self, device_id: int, group_id: int) -> None:
        """The device is no longer the group's: free its claim, then its hold."""
        try:
            await self.rt.store.take_meta(member_key(device_id), group_id)
        finally:
            if self.held.get(device_id) == group_id:
                del self.held[device_id]

    async def _configure(self, g: Group, device_id: int, settings: dict[str, Json]) -> str | None:
        """Give the device the programme's FFR settings, keeping those it had."""
        previous = ffr_config(self.rt.reading(device_id))
        rec = await self.rt.engine.command(
            g.account_id, device_id, FirmwareCommand("pc.config", {"ffr": settings})
        )
        if rec.state is not CommandState.DONE:
            return f"the device did not take the settings: {rec.error or rec.state.value}"
        g.previous[device_id] = previous
        return None

    async def delete_group(self, account_id: int, group_id: int) -> dict[str, Json]:
        """Unenrol every device (their FFR settings restored) and forget the group."""
        g = self.group(account_id, group_id)
        self._refuse_while_running(g)
        restored: list[Json] = []
        failed: list[Json] = []
        for i in list(g.device_ids):
            why = await self._release(g, i)
            (restored if why is None else failed).append(
                i if why is None else {"device_id": i, "reason": why}
            )
        del self.groups[g.id]
        await self._save_groups()
        return {"id": g.id, "restored": restored, "not_restored": failed}

    async def unenrol(self, account_id: int, group_id: int, device_id: int) -> dict[str, Json]:
        """Take one device out of the group, its FFR settings restored."""
        g = self.group(account_id, group_id)
        if device_id not in g.device_ids:
            raise NotFound(f"device {device_id} is not in FFR group {g.id}", field="device_id")
        self._refuse_while_running(g)
        why = await self._release(g, device_id)
        await self._save_groups()
        return {"device_id": device_id, "restored": why is None, "reason": why}

    def _refuse_while_running(self, g: Group) -> None:
        ev = self.open.get(g.id)
        if ev is not None:
            raise EventInProgress(
                f"FFR group {g.id} has event {ev.id} in progress: its logging window ends "
                f"{ev.window_end - self.rt.clock.now():.1f} s from now; try again then",
                field="group",
            )

    async def _release(self, g: Group, device_id: int) -> str | None:
        """Restore the device's FFR settings from before enrolment; why not, if not. It is
        held until then: another group's settings must not be overwritten by these."""
        g.device_ids.remove(device_id)
        self.member.pop(device_id, None)
        self.held[device_id] = g.id
        try:
            return await self._restore(g, device_id)
        finally:
            await self._let_go(device_id, g.id)

    async def _restore(self, g: Group, device_id: int) -> str | None:
        previous = g.previous.pop(device_id, None) or default_config()["ffr"]
        assert isinstance(previous, dict)
        request = {"enable": previous.get("enabled", False)}
        request.update({k: v for k, v in previous.items() if k != "enabled"})
        try:
            rec = await self.rt.engine.command(
                g.account_id, device_id, FirmwareCommand("pc.config", {"ffr": request})
            )
        except SwitchgearError as err:
            return str(err)
        if rec.state is not CommandState.DONE:
            return f"the device did not take the settings: {rec.error or rec.state.value}"
        return None

    def group(self, account_id: int, group_id: int) -> Group:
        g = self.groups.get(group_id)
        if g is None or g.account_id != account_id:
            raise GroupNotFound("FFR group not found")
        return g

    def account_groups(self, account_id: int) -> list[Group]:
        return [g for g in self.groups.values() if g.account_id == account_id]


def member_key(device_id: int) -> str:
    """The store row naming the group a device is in (one row: one group at most)."""
    return f"{MEMBER_KEY}{device_id}"


SHOWN_REFUSALS = 3  # in a refusal's one-line detail; its `refused` lists every one


def none_enrolled(refused: list[dict[str, Json]]) -> str:
    """The one-line detail of a group request whose every device was refused."""
    shown = "; ".join(f"device {r['device_id']}: {r['reason']}" for r in refused[:SHOWN_REFUSALS])
    more = len(refused) - SHOWN_REFUSALS
    tail = f"; and {more} more (see refused)" if more > 0 else ""
    return f"no device enrolled: every device named was refused ({shown}{tail})"


def ffr_config(state: DeviceState) -> Json:
    """The device's FFR settings as it reports them (the firmware's default if none)."""
    config = state.extra.get("config")
    if isinstance(config, dict) and isinstance(config.get("ffr"), dict):
        return dict(config["ffr"])
    ffr = default_config()["ffr"]
    assert isinstance(ffr, dict)
    return dict(ffr)
