"""FFR group membership: enrolling controllers, and letting them go with their settings back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

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
from switchgear.keptrows import split_legacy
from switchgear.runtime import Runtime

GROUPS_KEY = "ffr:groups"  # every group in one row, as versions before kept them (moved)
GROUP_KEY = "ffr:group/"  # + id: one group, written only by whoever changes that group
GROUP_ID_KEY = "ffr:group-id:"  # + N: group id N is taken (by any worker)
MEMBER_KEY = "ffr:member/"  # + device id: the group it is in (claimed by any worker)
PEER_GROUP = "ffr.group"  # {"id"}: told to the other workers when that group changes


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

    def _drop_group(self, group_id: int) -> None:
        g = self.groups.pop(group_id, None)
        for i in g.device_ids if g is not None else ():
            if self.member.get(i) == group_id:
                del self.member[i]

    async def _load_groups(self) -> None:
        """Every stored group (an older version's single row moved first to a row each)."""
        legacy = await split_legacy(self.rt, GROUPS_KEY, legacy_rows)
        # (what another worker starting now may still be moving, then the rows)
        rows = {k: g for k, g in legacy_rows(legacy) if k.startswith(GROUP_KEY)}
        rows.update(await self.rt.store.metas(GROUP_KEY))
        for _, g in sorted(rows.items(), key=lambda row: int(row[0][len(GROUP_KEY) :])):
            if isinstance(g, dict) and g:
                self._add_group(Group.from_json(g))

    async def _save_group(self, g: Group) -> None:
        """Store the group in its own row, then tell the other workers to read it again:
        what another worker changes at the same time is in rows of its own."""
        if self.groups.get(g.id) is not g:  # deleted meanwhile: not to be brought back
            return
        self.rt.journal.put_meta(group_key(g.id), g.to_json())
        await self.rt.journal.flush()
        await self.rt.peers.tell(PEER_GROUP, {"id": g.id})

    async def _forget_group(self, g: Group) -> None:
        """Delete the group's row (after any write of it still in the group commit)."""
        self._drop_group(g.id)
        await self.rt.journal.flush()
        await self.rt.store.take_meta(group_key(g.id))
        await self.rt.peers.tell(PEER_GROUP, {"id": g.id})

    async def _peer_group(self, body: Json) -> None:
        """Another worker changed a group: read its row again (events stay as they are)."""
        gid = body.get("id") if isinstance(body, dict) else None
        if not isinstance(gid, int):
            return
        stored = await self.rt.store.meta(group_key(gid))
        self._drop_group(gid)
        if isinstance(stored, dict) and stored:
            self._add_group(Group.from_json(stored))

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
        await self._save_group(g)
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
        await self._forget_group(g)
        return {"id": g.id, "restored": restored, "not_restored": failed}

    async def unenrol(self, account_id: int, group_id: int, device_id: int) -> dict[str, Json]:
        """Take one device out of the group, its FFR settings restored."""
        g = self.group(account_id, group_id)
        if device_id not in g.device_ids:
            raise NotFound(f"device {device_id} is not in FFR group {g.id}", field="device_id")
        self._refuse_while_running(g)
        why = await self._release(g, device_id)
        await self._save_group(g)
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


def group_key(group_id: int) -> str:
    """The store row of one group."""
    return f"{GROUP_KEY}{group_id}"


def legacy_rows(legacy: Json) -> Iterator[tuple[str, Json]]:
    """The rows of what a version before kept in one (`ffr:groups`, a list of groups): a
    row per group, and its devices' membership claims."""
    for g in legacy if isinstance(legacy, list) else ():
        if isinstance(g, dict) and isinstance(g.get("id"), int):
            yield group_key(g["id"]), g
            for i in g.get("devices") or ():
                yield member_key(i), g["id"]


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
