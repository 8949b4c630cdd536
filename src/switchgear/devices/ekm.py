"""EKM Omnimeter v4 settings constants (as EKM documents them), as data."""

from __future__ import annotations

PASSWORD_LENGTH = 8
DEFAULT_PASSWORD = "00000000"
CT_RATIOS = (100, 200, 400, 600, 800, 1000, 1200, 1500, 2000, 3000, 4000, 5000)
MAX_DEMAND_PERIODS = {1: 15, 2: 30, 3: 60}  # setting -> minutes
MAX_DEMAND_RESET_INTERVALS = {0: "off", 1: "monthly", 2: "weekly", 3: "daily", 4: "hourly"}
PULSE_LINES = (1, 2, 3)
PULSE_INPUT_RATIO_MAX = 9999
PULSE_OUTPUT_RATIOS = (1, 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 80, 100, 200, 400, 800, 1600)
RELAY_DURATION_MAX_S = 9999
LCD_ITEMS_MAX = 40
SCHEDULES = 6
PERIODS_PER_SCHEDULE = 4
TARIFFS = 4
HOLIDAYS_MAX = 20


def _lcd_fields() -> dict[str, int]:
    names: dict[str, int] = {"kWh_Tot": 1, "Rev_kWh_Tot": 2}
    for base, first in (("RMS_Volts_Ln_", 3), ("Amps_Ln_", 6), ("RMS_Watts_Ln_", 9)):
        names.update({f"{base}{i}": first + i - 1 for i in (1, 2, 3)})
    names["RMS_Watts_Tot"] = 12
    names.update({f"Power_Factor_Ln_{i}": 12 + i for i in (1, 2, 3)})
    names.update({f"kWh_Tariff_{i}": 15 + i for i in (1, 2, 3, 4)})
    names.update({f"Rev_kWh_Tariff_{i}": 19 + i for i in (1, 2, 3, 4)})
    names.update({f"Reactive_Pwr_Ln_{i}": 23 + i for i in (1, 2, 3)})
    names.update({"Reactive_Pwr_Tot": 27, "Line_Freq": 28})
    names.update({f"Pulse_Cnt_{i}": 28 + i for i in (1, 2, 3)})
    names.update({"kWh_Ln_1": 32, "Rev_kWh_Ln_1": 33, "kWh_Ln_2": 34, "Rev_kWh_Ln_2": 35})
    names.update({"kWh_Ln_3": 36, "Rev_kWh_Ln_3": 37, "Reactive_Energy_Tot": 38})
    names.update({"kWh_Rst": 39, "Rev_kWh_Rst": 40, "State_Inputs": 41, "Max_Demand": 42})
    names.update({f"Raw_Pulse_{i}": 42 + i for i in (1, 2, 3)})
    names.update({"CT_Ratio": 47, "Calc_Fwd_kWh": 51})
    return names


LCD_FIELDS: dict[str, int] = _lcd_fields()  # display item name -> item number
LCD_NUMBERS = frozenset(LCD_FIELDS.values())
DEFAULT_LCD = (1, 2, 12, 28)
RELAYS = {"relay_1": 0, "relay_2": 1}  # names arrive as Relay_1 / relay_1: matched lowercased
RELAY_STATUS = {"close": True, "closed": True, "open": False}  # close = contact closed = on


def state_out(relay_1: bool, relay_2: bool) -> int:
    """The relay outputs as meter reads report them (State_Out)."""
    return {(False, False): 1, (False, True): 2, (True, False): 3, (True, True): 4}[
        (relay_1, relay_2)
    ]
