"""`jointspace train` and `jointspace eval`: learn the joint space and measure it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from jointspace.choices import LOSSES, TRAINABLE_TEXT_ENCODERS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from jointspace.encoders.bundle import Bundle
    from jointspace.settings import Settings

# `none`: the default trains on every part of every source with the schedule and blend weight that
# leave-one-source-out chose (DEFAULT_RUN); naming validation sets brings back early stopping.
DEFAULT_VAL_SOURCES = "none"


def _csv(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip())


def _logging() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("gensim", "sentence_transformers", "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _check(value: str, allowed: tuple[str, ...], what: str) -> str:
    from jointspace.errors import ConfigurationError

    if value not in allowed:
        raise ConfigurationError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")
    return value


def train_command(
    text: Annotated[str, typer.Option(help=f"Text encoder: {', '.join(TRAINABLE_TEXT_ENCODERS)}.")] = "minilm",
    loss: Annotated[
        str, typer.Option(help=f"Loss: {', '.join(LOSSES)} (ridge: a linear head in closed form, no epochs).")
    ] = "ridge",
    targets: Annotated[str, typer.Option(help="Targets: word (label words) or sentence (whole caption).")] = "word",
    epochs: Annotated[
        int, typer.Option(min=1, help="Epochs of a gradient-trained loss (most epochs with validation sets).")
    ] = 30,
    ridge_lambda: Annotated[
        float | None, typer.Option(min=0, help="Loss ridge: the L2 penalty per 1,000 pictures [LOSO's choice].")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Bundle folder [<home>/models/<name>-<date>].")] = None,
    sources: Annotated[
        str,
        typer.Option(
            help="Sources to train on (`all`: every prepared one; `photos`: the photo sources; with validation "
            "sets only their train split / 40 % train part)."
        ),
    ] = "all",
    val_sources: Annotated[
        str,
        typer.Option(
            help="Validation sets (val split; `photos`: the 30 % val part of the "
            "photo sources); their mean keyword P@10 chooses the epoch and "
            "ensemble weight. `none` (default): no validation, LOSO's fixed schedule and weight."
        ),
    ] = DEFAULT_VAL_SOURCES,
    augment: Annotated[
        str,
        typer.Option(
            help="Augmentation variants cached per image, as extra rows for the head: crop-colour, "
            "icon-blur, line-art, silhouette (default none: measured no clear gain, see docs/eval-report.md)."
        ),
    ] = "",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    finetune_steps: Annotated[
        int, typer.Option(help="Then fine-tune the backbone's last blocks for N steps (GPU advised).")
    ] = 0,
    latest: Annotated[bool, typer.Option(help="Make this bundle the default (`latest`).")] = True,
    limit: Annotated[int | None, typer.Option(min=2, help="At most N training items (a quick run).")] = None,
    prior: Annotated[
        str,
        typer.Option(
            help="ImageNet classes as text for the zero-training vector: wordnet "
            "(lemma + hypernyms) or prompt (\"a photo of a {class}\")."
        ),
    ] = "",
    prior_targets: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Share of each training target taken from the picture's zero-training vector."),
    ] = None,
    max_per_source: Annotated[
        int | None,
        typer.Option(
            min=10, help="At most N pictures of each source (a fixed spread by id, as eval --loso --max-per-source)."
        ),
    ] = None,
    zeroshot_weight: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Blend weight of the zero-training vector when there is no validation set."),
    ] = None,
    neighbour_weight: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            help="Blend weight of the nearest training pictures' targets (0: none) [LOSO's choice].",
        ),
    ] = None,
    from_index: Annotated[
        bool,
        typer.Option(
            "--from-index",
            help="Train on the captioned posts already indexed, from the image features the workers kept "
            "(no prepared data, no picture decoded); prints zero-training, the current bundle and the new head.",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(help="With --from-index: only posts ingested since this time (ISO 8601) or this long ago (7d)."),
    ] = None,
    holdout: Annotated[
        str,
        typer.Option(help="With --from-index: validate on the newest posts (`time`) or on one source (its name)."),
    ] = "time",
    holdout_share: Annotated[
        float, typer.Option(min=0.05, max=0.5, help="With --from-index --holdout time: the newest share held out.")
    ] = 0.2,
    as_json: Annotated[bool, typer.Option("--json", help="With --from-index: print the report as JSON.")] = False,
) -> None:
    """Train a head on cached image features, write a model bundle and make it the default."""
    if from_index:
        from jointspace.cli.train_from_index import run_from_index

        run_from_index(loss, epochs, seed, out, latest, since, holdout, holdout_share, as_json)
        return
    import time
    from dataclasses import replace
    from datetime import datetime

    from jointspace.encoders.augment import VARIANTS
    from jointspace.encoders.bundle_writer import save_trained
    from jointspace.encoders.training import TrainConfig
    from jointspace.encoders.training_runs import DEFAULT_RUN, RunOptions, Workspace, check_validation, train_one
    from jointspace.settings import get_settings

    _logging()
    _check(text, TRAINABLE_TEXT_ENCODERS, "text encoder")
    _check(loss, LOSSES, "loss")
    _check(targets, ("word", "sentence"), "targets")
    for variant in _csv(augment):
        _check(variant, tuple(VARIANTS), "augmentation")
    settings = get_settings()
    started = time.perf_counter()
    from jointspace.encoders.imagenet import ClassPrior

    defaults = DEFAULT_RUN
    val = () if val_sources.strip().lower() == "none" else _csv(val_sources)
    lam = defaults.train.ridge_lambda if ridge_lambda is None else ridge_lambda
    options = RunOptions(
        text=text,
        targets=targets,  # type: ignore[arg-type]  # a Literal, checked by _check above
        train=replace(TrainConfig(), loss=loss, epochs=epochs, seed=seed, ridge_lambda=lam),  # type: ignore[arg-type]  # as targets
        train_sources=_csv(sources),
        val_sources=val,
        augment=_csv(augment),
        limit=limit,
        prior=ClassPrior(_check(prior, ("wordnet", "prompt"), "prior"))  # type: ignore[arg-type]  # as targets
        if prior
        else defaults.prior,
        prior_target_weight=defaults.prior_target_weight if prior_targets is None else prior_targets,
        zeroshot_weight=defaults.zeroshot_weight if zeroshot_weight is None else zeroshot_weight,
        neighbour_weight=defaults.neighbour_weight if neighbour_weight is None else neighbour_weight,
        neighbour_k=defaults.neighbour_k,
        neighbour_temperature=defaults.neighbour_temperature,
        # Without validation sets nothing is held back: every part of every source trains.
        parts=("train",) if val else ("train", "val", "test"),
    )
    ws = Workspace(settings, max_per_source=max_per_source)
    # Too few validation pictures: refused when they are the defaults (missing data), said when chosen.
    # Without validation sets (`none`) there is nothing to check: epochs and weight are fixed.
    warning = check_validation(ws, options, chosen=val_sources != DEFAULT_VAL_SOURCES) if val else None
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = out or settings.models_dir / f"{text}-{loss}-{targets}-{stamp}"
    trained = train_one(ws, options, checkpoint=folder / "checkpoint.pt")
    if finetune_steps:
        from jointspace.encoders.finetune import finetune_last_blocks

        finetune_last_blocks(ws, trained, steps=finetune_steps, out=folder)
    save_trained(trained, folder, settings, make_latest=latest)
    (folder / "checkpoint.pt").unlink(missing_ok=True)
    if text == "minilm":
        trained.text.vocab_matrix()  # type: ignore[attr-defined]  # cache now, not on the first query
    v = trained.val_scores
    if options.val_sources:
        scored = (
            f"validation ({v['validation']}), keyword P@10: zero-training {v['zeroshot']:.3f}, head "
            f"{v['0']:.3f}, ensemble (weight {trained.zeroshot_weight:g}) {v[f'{trained.zeroshot_weight:g}']:.3f}"
            f"\n  best epoch {trained.result.best_epoch}"
        )
    else:
        schedule = (
            f"closed-form ridge (λ {options.train.ridge_lambda:g})"
            if options.train.loss == "ridge"
            else f"{trained.result.best_epoch} epochs"
        )
        neighbours = (
            f", {options.neighbour_k} nearest pictures' targets weight {options.neighbour_weight:g}"
            if trained.neighbours is not None
            else ""
        )
        scored = (
            f"no validation set: {schedule} and zero-training weight "
            f"{trained.zeroshot_weight:g}{neighbours} as chosen by leave-one-source-out (docs/eval-report.md), "
            f"{trained.n_train} pictures"
        )
    typer.echo(
        f"bundle {folder}\n  {scored}, {time.perf_counter() - started:.0f} s in all"
        f"{'; now the default bundle' if latest else ''}"
    )
    _hint_reindex(settings, folder)


def _hint_reindex(settings: Settings, folder: Path) -> None:
    """An existing embedded index was built by another bundle and will refuse this one's queries: say so."""
    from jointspace.backends.embedded import EmbeddedBackend
    from jointspace.encoders.bundle import read_manifest

    recorded = None if settings.es_url else EmbeddedBackend.recorded_model(settings.embedded_dir)
    if recorded and recorded[0] != read_manifest(folder)["name"]:
        typer.echo(
            f"  the embedded index in {settings.embedded_dir} holds vectors of bundle {recorded[0]!r}: "
            f"`jointspace reindex --bundle {folder}` re-embeds its posts with this one"
        )


def eval_command(
    bundle: Annotated[Path | None, typer.Option(help="Bundle to evaluate [the default bundle].")] = None,
    grid: Annotated[
        bool, typer.Option(help="Also train and compare every text encoder × loss (and target kind).")
    ] = False,
    compare: Annotated[
        list[Path] | None, typer.Option(help="Another bundle to measure in the same run (repeatable).")
    ] = None,
    sources: Annotated[str, typer.Option(help="Sources the grid trains on (as for train).")] = "openclipart,photos",
    val_sources: Annotated[str, typer.Option(help="Validation sets of the grid (as for train).")] = "tuxpaint,photos",
    grid_epochs: Annotated[int, typer.Option(min=1, help="Most epochs per grid head.")] = 40,
    out: Annotated[Path | None, typer.Option(help="Report folder [<home>/reports/<date>].")] = None,
    docs: Annotated[
        Path | None, typer.Option(help="Also copy the markdown report here (e.g. docs/eval-report.md).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=2, help="At most N training items per grid head.")] = None,
    augment: Annotated[str | None, typer.Option(help="Augmentation variants for grid heads [as train].")] = None,
    loso: Annotated[
        bool,
        typer.Option(
            "--loso",
            help="Leave-one-source-out: for each prepared source, train the "
            "default configuration on all the others and score it there, "
            "beside zero-training.",
        ),
    ] = False,
    holdout_source: Annotated[
        list[str] | None, typer.Option(help="With --loso (implied): hold out only this source (repeatable).")
    ] = None,
    loso_grid: Annotated[
        bool,
        typer.Option(help="With --loso: every candidate configuration of the selection grid, not only the default."),
    ] = False,
    loso_sources: Annotated[
        str | None, typer.Option(help="With --loso: the sources taking part [every prepared source].")
    ] = None,
    max_per_source: Annotated[
        int | None,
        typer.Option(
            min=10, help="With --loso: at most N pictures of each source (a fixed spread by id), for a quicker run."
        ),
    ] = None,
    train_max_per_source: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="With --loso: what training (head and neighbour bank) takes of each other source, where it "
            "differs from --max-per-source: at most N pictures of the same spread, 0 every picture "
            "[as --max-per-source]. The held-out galleries stay as --max-per-source makes them.",
        ),
    ] = None,
    backbone: Annotated[
        list[str] | None,
        typer.Option(
            help="With --loso: also run the candidates on this backbone's features (repeatable; e.g. "
            "efficientnet_lite1, each at its own resolution), beside the zero-training baselines of every "
            "backbone taking part; the settings' backbone stays the reference."
        ),
    ] = None,
    tta: Annotated[
        str | None,
        typer.Option(
            help="With --loso: also run the candidates on features averaged with these variants' "
            "(test-time augmentation, e.g. `flip`: the picture and its mirror), on every backbone taking part."
        ),
    ] = None,
) -> None:
    """Measure text → image and image → image retrieval on the test split of every prepared source."""
    from datetime import datetime

    from jointspace.settings import get_settings

    _logging()
    settings = get_settings()
    folder = out or settings.home / "reports" / datetime.now().strftime("%Y-%m-%d-%H%M%S")
    if loso or holdout_source or loso_grid or backbone or tta:
        _loso(
            settings,
            folder,
            docs,
            holdout_source,
            loso_grid,
            loso_sources,
            limit,
            max_per_source,
            compare or (),
            image_sides(settings.backbone, backbone or (), _csv(tta) if tta else ()),
            train_max_per_source,
        )
        return
    from jointspace.encoders.evaluation.runner import run_evaluation

    report = run_evaluation(
        settings,
        folder,
        bundle=bundle,
        grid=grid,
        train_sources=_csv(sources),
        val_sources=_csv(val_sources),
        grid_epochs=grid_epochs,
        limit=limit,
        augment=_csv(augment) if augment is not None else None,
        compare=compare or (),
    )
    md = (folder / "report.md").read_text(encoding="utf-8")
    if docs:
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(md, encoding="utf-8")
    typer.echo(md)
    typer.echo(f"report in {folder} ({len(report['configurations'])} configurations)")


def _loso(
    settings: Settings,
    folder: Path,
    docs: Path | None,
    holdout: list[str] | None,
    grid: bool,
    sources: str | None,
    limit: int | None,
    max_per_source: int | None,
    compare: tuple[Path, ...] | list[Path] = (),
    sides: Sequence[tuple[str | None, tuple[str, ...]]] = ((None, ()),),
    train_max_per_source: int | None = None,
) -> None:
    from dataclasses import replace

    from jointspace.encoders.bundle import load_bundle
    from jointspace.encoders.evaluation.loso import DEFAULT_CANDIDATE, GRID, run_loso
    from jointspace.encoders.evaluation.loso_report import markdown, write_loso_report
    from jointspace.encoders.training_runs import Workspace, expand_sources

    candidates = list(GRID) if grid else [DEFAULT_CANDIDATE]
    if limit:
        candidates = [replace(c, options=replace(c.options, limit=limit)) for c in candidates]
    if list(sides) != [(None, ())]:  # each candidate once per image side, named after it
        candidates = [
            replace(c, name=f"{c.name} {'+'.join((name or settings.backbone, *views))}", backbone=name, tta=views)
            for name, views in sides
            for c in candidates
        ]
    report = run_loso(
        Workspace(settings, max_per_source=max_per_source, train_max_per_source=train_max_per_source),
        candidates,
        holdout=holdout or None,
        sources=_csv(sources) if sources else None,
        bundles=[_with_sources(load_bundle(path, settings), expand_sources) for path in compare],
    )
    write_loso_report(report, folder)
    md = markdown(report)
    if docs:
        docs.parent.mkdir(parents=True, exist_ok=True)
        docs.write_text(md, encoding="utf-8")
    typer.echo(md)
    typer.echo(f"report in {folder} (winner: {report['winner']})")


def image_sides(
    reference: str, backbones: Sequence[str], tta: Sequence[str]
) -> list[tuple[str | None, tuple[str, ...]]]:
    """(backbone, test-time variants) pairs for `eval --loso --backbone ... --tta ...`: the reference
    backbone (None) and each other one, each plain and, with `tta`, with it."""
    names: list[str | None] = [None, *(b for b in dict.fromkeys(backbones) if b != reference)]
    return [(name, views) for name in names for views in ((), *((tuple(tta),) if tta else ()))]


def _with_sources(bundle: Bundle, expand: Callable[[Sequence[str]], list[str]]) -> tuple[Bundle, list[str] | None]:
    """(bundle, the sources it trained on): its manifest's `data_sources`, else its named training
    sources when they are not `all` (then unknown: None)."""
    training = bundle.manifest.get("training") or {}
    if training.get("data_sources"):
        return bundle, list(training["data_sources"])
    named = list(training.get("sources") or ())
    return bundle, None if not named or "all" in named else expand(named)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("eval")(eval_command)
