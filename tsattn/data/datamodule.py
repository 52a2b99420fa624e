"""ForecastDataModule: CSV -> validated series -> chronological split -> scaler(train) -> windows -> loaders."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import lightning as L
import numpy as np
import torch

from tsattn.data.calendar import calendar_features, feature_names, season_candidates, season_length
from tsattn.data.naive import choose, naive_seasons, rule_errors, rule_label
from tsattn.data.io import read_series, require_length
from tsattn.data.regularity import fill_within_borders
from tsattn.data.scaling import StandardScaler
from tsattn.data.series import SeriesCollection
from tsattn.data.split import (
    SPLITS,
    Borders,
    RatioSplit,
    RowSplit,
    TailSplit,
    resolve_split,
    window_starts,
    windowless_series,
)
from tsattn.data.static import StaticEncoder
from tsattn.data.units import series_units
from tsattn.data.windows import WindowDataset, batch_loader, known_channels
from tsattn.errors import TsattnError

log = logging.getLogger(__name__)


class ForecastDataModule(L.LightningDataModule):
    """Windows of lookback L and horizon H over every series of one CSV file.

    Args:
        path: the CSV file (wide or long, see tsattn.data.io.read_series).
        targets: columns to forecast; None takes every value column.
        covariates: past covariates, fed to the encoder only.
        future_covariates: columns known ahead (planned prices, holidays, a weather forecast): scaled like
            the targets, they join the calendar features as known channels, read by the encoder over the
            lookback and by every decoder at each horizon step.
        static_covariates: columns of a long file with one value per series (numbers, or levels one-hot
            coded); their code joins the known channels of every step (tsattn.data.static).
        static_levels: static covariates that are levels even when every value is a number (a store code
            "001"): one-hot coded, their text kept.
        time_col: timestamp column; detected when None.
        time_format: the time column's strftime format (data.time_format); inferred when None.
        id_col: series id column of a long file; None for a wide file.
        missing: "error", "interpolate" or "ffill" for gaps and empty cells.
        freq: pandas frequency alias when it cannot be inferred.
        lookback: L, input steps per window.
        horizon: H, forecast steps per window.
        split: a RatioSplit, RowSplit or TailSplit, or a name: "ratio" (70/10/20 per series, the default) or
            "tail" (validation and test the last H rows of each series); tsattn.data.split.resolve_split.
        calendar: "auto", a list of feature names, or "none".
        stride: step between consecutive training windows (evaluation always uses every window).
        train_tail: when set, only the training windows whose targets lie in the last `train_tail` rows before each
            series' training border (N-BEATS's history limit: its cut points come from each series' last 10·H
            values): every long series then gives as many windows, so batches sample the series alike, and the
            recent rows, nearest what is forecast, are what the model learns from. At least H.
        batch_size: windows per training batch.
        eval_batch_size: windows per validation/test batch; batch_size when None.
        num_workers: DataLoader worker processes.
        name: the dataset's name, used for experiment and run names.
        season_length: steps in the data's dominant cycle, for the seasonal-naive baseline every test
            score is set beside (and the seasonal_naive model); inferred from the frequency when None
            (24 for hourly data, 7 for daily, 12 for monthly).
        sep: the CSV field separator.
        collection: the file already read (tsattn.data.io.read_configured) with its gaps unfilled; read
            from `path` when None.
        layout: "auto" (wide, or long with id_col) or "rows": one row per series, its id then its values
            (tsattn.data.rows), each series starting at `start` on the grid of `freq`.
        start: the first time of every series in the "rows" layout.
    """

    def __init__(
        self,
        path: str,
        targets: Sequence[str] | None = None,
        covariates: Sequence[str] = (),
        time_col: str | None = None,
        id_col: str | None = None,
        missing: str = "error",
        freq: str | None = None,
        lookback: int = 96,
        horizon: int = 24,
        split: RatioSplit | RowSplit | TailSplit | str | None = None,
        calendar: str | Sequence[str] | None = "auto",
        stride: int = 1,
        batch_size: int = 256,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        name: str = "data",
        season_length: int | None = None,
        sep: str = ",",
        collection: SeriesCollection | None = None,
        future_covariates: Sequence[str] = (),
        static_covariates: Sequence[str] = (),
        time_format: str | None = None,
        static_levels: Sequence[str] = (),
        layout: str = "auto",
        start: str | None = None,
        train_tail: int | None = None,
    ) -> None:
        super().__init__()
        if lookback < 1 or horizon < 1 or stride < 1:
            raise TsattnError(
                f"data.lookback={lookback}, data.horizon={horizon} and data.stride={stride} must all be >= 1"
            )
        if train_tail is not None and train_tail < horizon:
            raise TsattnError(
                f"data.train_tail={train_tail} leaves no training window of horizon {horizon}; give at least "
                f"data.horizon rows (N-BEATS used 10 x H), or null for every training window"
            )
        self.train_tail = train_tail
        if season_length is not None and season_length < 1:
            raise TsattnError(f"data.season_length={season_length} must be >= 1, or null to infer it")
        self.configured_season_length = season_length
        self.path, self.name = path, name
        self.read_args = dict(
            targets=None if targets is None else list(targets),
            covariates=list(covariates or []),
            future_covariates=list(future_covariates or []),
            static_covariates=list(static_covariates or []),
            static_levels=list(static_levels or []),
            time_col=time_col,
            time_format=time_format,
            id_col=id_col,
            missing=missing,
            freq=freq,
            sep=sep,
            layout=layout,
            start=start,
        )
        self._read = collection
        self.lookback, self.horizon, self.stride = lookback, horizon, stride
        self.split = split
        # Per split, the series that give it no window and why (series id -> reason): said, never silent.
        self.windowless: dict[str, dict[str, str]] = {}
        self.split_used = ""
        self.calendar = calendar
        self.batch_size, self.num_workers = batch_size, num_workers
        self.eval_batch_size = eval_batch_size or batch_size
        self.collection: SeriesCollection | None = None
        self.borders: dict[str, Borders] = {}
        self.scaler: StandardScaler | None = None
        self.static_encoder: StaticEncoder | None = None
        self.calendar_names: list[str] = []
        self.datasets: dict[str, WindowDataset] = {}
        self._restored: dict | None = None  # a state loaded before setup(): its scaler wins over a new fit
        # The simple rules' MSE per split (season -> MSE; season 1 is the last value), and the one the
        # validation windows chose: the strongest simple forecast every test score stands beside.
        self.naive_errors: dict[str, dict[int, float]] = {}
        self.best_naive_season: int | None = None

    def setup(self, stage: str | None = None) -> None:
        """Read, split, fill, scale and window the data; idempotent, so callers may run it before the Trainer."""
        if self.datasets:
            return
        collection = self._read or read_series(self.path, fill=False, **self.read_args)
        self._read = None  # the filled copy below is the one kept
        require_length(
            collection, self.lookback + self.horizon, f"one window (lookback {self.lookback} + horizon {self.horizon})"
        )
        lengths = {s.id: len(s.time) for s in collection.series}
        splitter, note = resolve_split(self.split, lengths, self.lookback, self.horizon)
        if note:
            log.warning(note)
        # The splitter used, for the run's record: the ratio split's fall-back depends on L and H.
        self.split_used = f"{type(splitter).__name__}({', '.join(f'{k}={v}' for k, v in vars(splitter).items())})"
        borders = {sid: splitter.borders(n) for sid, n in lengths.items()}
        self.windowless = windowless_series(borders, self.lookback, self.horizon)
        for split, reasons in self.windowless.items():
            if reasons:
                first, why = next(iter(reasons.items()))
                log.warning(
                    "%d of %d series give no %s window (series %r: %s)%s",
                    len(reasons),
                    len(lengths),
                    split,
                    first,
                    why,
                    "; data.json lists every one" if len(reasons) > 1 else "",
                )
        # Training rows are filled from training rows, validation and test rows from the rows before them.
        missing, train_ends = self.read_args["missing"], {sid: b.train_end for sid, b in borders.items()}
        filled = [
            fill_within_borders(s, missing, train_ends[s.id], collection.columns, collection.source)
            for s in collection.series
        ]
        self.collection = dataclasses.replace(collection, series=filled)
        self.borders = borders
        if self._restored:  # a checkpoint's statistics, kept: the model was trained on data scaled with them
            self.scaler = StandardScaler.from_dict(self._restored["scaler"])
            self.calendar_names = list(self._restored["calendar"])
            self.static_encoder = StaticEncoder.restore(self._restored.get("static"))
            restored = self.static_encoder.columns if self.static_encoder is not None else []
            if restored != collection.static_covariates:
                raise TsattnError(
                    f"the checkpoint was trained with data.static_covariates={restored} but this run sets "
                    f"{collection.static_covariates}; resume with the settings the checkpoint was trained with"
                )
            for column, kind in (self.static_encoder.kinds if self.static_encoder is not None else {}).items():
                read = {type(values[column]) for values in collection.static.values()}
                if read != ({str} if kind == "categorical" else {float}):
                    raise TsattnError(
                        f"the checkpoint read static covariate {column!r} as "
                        f"{'levels' if kind == 'categorical' else 'numbers'} but this run reads it otherwise; "
                        "resume with the data.static_levels the checkpoint was trained with"
                    )
            unknown = [s.id for s in collection.series if s.id not in self.scaler.stats]
            if unknown:
                raise TsattnError(
                    f"{collection.source}: series {unknown[0]!r} has no statistics in the restored checkpoint; "
                    "resume with the data the checkpoint was trained on"
                )
        else:
            self.scaler = StandardScaler.fit(self.collection, train_ends)
            self.calendar_names = feature_names(collection.freq, self.calendar)
            self.static_encoder = (
                StaticEncoder.fit(collection.static_covariates, collection.static, collection.source)
                if collection.static_covariates
                else None
            )
        self._build_datasets()

    def _build_datasets(self) -> None:
        """Scaled values and known channels of every series, and each split's window starts.

        The known channels are the calendar features, the static code, then the scaled future covariates:
        windows give the model their lookback rows beside the values and their horizon rows as
        `known_future`.
        """
        collection = self.collection
        observed = collection.n_observed  # C + P: the rest of the columns are future covariates
        values, known_rows, offsets = [], [], []
        starts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
        series_of: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
        offset = 0
        for i, s in enumerate(collection.series):
            scaled = self.scaler.transform(s.id, s.values)  # [T, C + P + U]
            values.append(scaled[:, :observed])
            code = None if self.static_encoder is None else self.static_encoder.encode(collection.static[s.id])
            calendar = calendar_features(s.time, self.calendar_names)  # [T, K']
            known_rows.append(known_channels(calendar, code, scaled[:, observed:]))  # [T, K]
            offsets.append(offset)
            for split in SPLITS:
                stride = self.stride if split == "train" else 1  # every evaluation window is scored
                if split == "train" and self.train_tail is not None:
                    # Targets within the last train_tail rows; the stride counts back from the border, so the
                    # window that ends on it is always kept and every series gives as many windows.
                    local = window_starts(self.borders[s.id], split, self.lookback, self.horizon)
                    local = local[local + self.lookback >= self.borders[s.id].train_end - self.train_tail]
                    local = local[::-1][::stride][::-1].copy()
                else:
                    local = window_starts(self.borders[s.id], split, self.lookback, self.horizon, stride)
                starts[split].append(local + offset)
                series_of[split].append(np.full(len(local), i, dtype=np.int64))
            offset += len(s.time)

        values_t = torch.from_numpy(np.concatenate(values))  # [N, C + P]
        known_t = torch.from_numpy(np.concatenate(known_rows))  # [N, K]: calendar, static code, future covariates
        offsets_t = torch.tensor(offsets, dtype=torch.long)  # [S]
        season = self.season_length
        train_ends = {sid: b.train_end for sid, b in self.borders.items()}
        units = series_units(collection, self.scaler, train_ends, season)  # for the losses in the data's units
        for split in SPLITS:
            split_starts = torch.from_numpy(np.concatenate(starts[split]))
            if len(split_starts) == 0:
                raise TsattnError(
                    f"{collection.source}: the {split} split has no complete window of lookback {self.lookback} + "
                    f"horizon {self.horizon}; give that split more rows (data.split) or shorten the windows"
                )
            self.datasets[split] = WindowDataset(
                values_t,
                known_t,
                split_starts,
                torch.from_numpy(np.concatenate(series_of[split])),
                offsets_t,
                self.lookback,
                self.horizon,
                len(collection.targets),
                season_length=season if split == "test" and self._has_a_season_before_test(season) else None,
                units=units,
            )
        self._choose_simple_forecast()
        log.info(
            "%s: %d series, %d train / %d val / %d test windows (L=%d, H=%d, season %d steps%s)",
            collection.source,
            len(collection.series),
            *(len(self.datasets[split]) for split in SPLITS),
            self.lookback,
            self.horizon,
            season,
            "" if self.configured_season_length else ", inferred; set data.season_length to change it",
        )

    def _choose_simple_forecast(self) -> None:
        """Score the last value and seasonal naive at every candidate season on the validation and test windows;
        the validation windows choose the strongest, which the test batches then carry as "best_naive"."""
        seasons = naive_seasons(self.season_candidates, self.lookback)
        self.naive_errors = {split: rule_errors(self.datasets[split], seasons) for split in ("val", "test")}
        self.best_naive_season = choose(self.naive_errors["val"])
        self.datasets["test"].best_naive_season = self.best_naive_season
        log.info(
            "strongest simple forecast on the validation windows: %s (validation MSE %s)",
            rule_label(self.best_naive_season),
            ", ".join(f"{rule_label(m)} {e:.4f}" for m, e in self.naive_errors["val"].items()),
        )

    @property
    def season_candidates(self) -> list[int]:
        """The seasons simple forecasts are tried with: the frequency's (a day and a week for hourly data...)
        and data.season_length when set."""
        configured = [self.configured_season_length] if self.configured_season_length else []
        return sorted({*season_candidates(self.collection.freq), *configured})

    def _has_a_season_before_test(self, season: int) -> bool:
        """Whether every series has a full season before its test rows, for the seasonal-naive baseline."""
        short = [sid for sid, b in self.borders.items() if max(b.val_end, self.lookback) < season]
        if short:
            log.warning(
                "series %r has fewer than %d rows before its test split: no seasonal-naive baseline is scored",
                short[0],
                season,
            )
        return not short

    @property
    def dims(self) -> dict[str, int]:
        """Sizes the network needs: n_features (C + P + K input channels), n_targets (C), n_known (K).

        K counts every known channel: two per calendar feature, the static code's, one per future covariate.
        """
        if self.collection is None:
            raise RuntimeError("ForecastDataModule.setup() must run before dims are known")
        n_known = 2 * len(self.calendar_names) + self.static_width + len(self.collection.future_covariates)
        return {
            "n_features": self.collection.n_observed + n_known,
            "n_targets": len(self.collection.targets),
            "n_known": n_known,
        }

    @property
    def static_width(self) -> int:
        """E: the channels of the static covariates' code (0 without static covariates)."""
        return self.static_encoder.width if self.static_encoder is not None else 0

    @property
    def season_length(self) -> int:
        """Steps in the data's dominant cycle (24 for hourly data), for seasonal baselines: set or inferred."""
        return self.configured_season_length or season_length(self.collection.freq)

    def train_dataloader(self):
        return batch_loader(
            self.datasets["train"],
            self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            current_epoch=self._current_epoch,
        )

    def _current_epoch(self) -> int | None:
        # The epoch Lightning passes to set_epoch: the count of epochs whose batches were all processed.
        # (trainer.current_epoch lags by one while a run resumed from an end-of-epoch checkpoint restarts.)
        if self.trainer is None:
            return None
        return self.trainer.fit_loop.epoch_progress.current.processed

    def val_dataloader(self):
        return batch_loader(self.datasets["val"], self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def test_dataloader(self):
        return batch_loader(self.datasets["test"], self.eval_batch_size, shuffle=False, num_workers=self.num_workers)

    def state_dict(self) -> dict:
        """What a checkpoint must carry to scale new data the same way: scaler, borders, columns, calendar."""
        if self.scaler is None:
            return {}
        return {
            "scaler": self.scaler.to_dict(),
            "borders": {sid: b.as_dict() for sid, b in self.borders.items()},
            "calendar": self.calendar_names,
            "freq": self.collection.freq.freqstr,
            "static": self.static_encoder.to_dict() if self.static_encoder is not None else None,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Take a checkpoint's scaler and calendar features, before or after setup()."""
        if not state_dict:
            return
        self._restored = state_dict
        self.scaler = StandardScaler.from_dict(state_dict["scaler"])
        self.calendar_names = list(state_dict["calendar"])
        self.static_encoder = StaticEncoder.restore(state_dict.get("static"))  # none in older checkpoints
        if self.collection is not None:
            self.datasets = {}
            self._build_datasets()
