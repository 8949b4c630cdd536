"""The meterhttp dialect's demo section and curl example."""

from __future__ import annotations

from collections.abc import Mapping

from switchgear.core.catalog import model as catalog_model
from switchgear.core.model import Family, Json
from switchgear.dialects.meterhttp.routes import version
from switchgear.runtime import Runtime


async def demo_section(
    rt: Runtime, account_id: int, previous: Mapping[str, Json] | None
) -> dict[str, Json]:
    """The account's smart-MAIC meters: devid, devpass (PIN), phases, version."""
    meters = [d for d in rt.engine.devices(account_id, Family.METER) if "devpass" in d.attrs]
    return {
        "meters": [
            {
                "devid": d.serial,
                "devpass": d.attrs["devpass"],
                "phases": catalog_model(d.model).phases,
                "version": version(d),
            }
            for d in meters
        ]
    }


def example(content: Mapping[str, Json]) -> str | None:
    section = content.get("meterhttp")
    if not isinstance(section, dict) or not section.get("meters"):
        return None
    m = section["meters"][0]
    return (
        f"curl -s '{content['base_url']}/?page=getdata&devid={m['devid']}"
        f"&devpass={m['devpass']}&pout=1'"
    )
