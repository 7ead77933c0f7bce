"""Learning the features from the catalogue and the confirmed cases (``manage.py train_matcher``).

What it learns from: every reference image of an active implant — the catalogue's pictures and
the staff-confirmed cases (``implants.ReferenceImage``, source ``confirmed_case``). Each picture is
made to look like a film (``implants.synthetic_films.film_like``: crowns, bone, tilt, scale and
crop, the 180° turn and the upper jaw's apex up, perspective, blur, grain, contrast, JPEG) and
then framed by the one canonical view the worker uses (``matching.canonical.reference_view``), so
training sees what the matcher sees.

What it trains: a small residual head after the visual tower (``ResidualHead``: the identity at
its start, so epoch 0 is the running model), with an ArcFace loss over the training implants, on
the tower's features cached once per augmented view. With ``--unfreeze-blocks N`` the tower's
last N transformer blocks and its ``ln_post``/``proj`` (``TowerTail``) are trained too, at a lower
learning rate (``--backbone-lr``, default lr/10): what is cached then is each view's tokens before
those blocks (the frozen part runs once per view), and every step runs the N blocks forward and
backward. N = 0 is the cached-features path, unchanged. The vectors are centred exactly as the
embedder centres them (``matching.canonical``: hubness), so the loss is on the vectors the search
compares.

The held-out set is split by implant image: a share of the implants is held out entirely (their
pictures are never trained on: implants "added to the catalogue only afterwards"), and for
implants with several pictures a share of those. The held-out queries are film-like views drawn
from a random stream training never uses: of each held-out picture, and, for an implant in
training with no held-out picture (the seed catalogue has one picture per implant), of its
training pictures — reported apart. They are searched against the whole catalogue (every
implant's clean pictures, as the worker searches), for the running model and the new one alike.

The checkpoint is an ordinary open_clip file (``RAIOX_CLIP_PRETRAINED`` can name it) with the
head and its own model id beside the weights: ``<base model id>+run<N>``; with unfrozen blocks,
the visual tower it holds is the trained one, so the existing load path embeds with it.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from torch import nn
from tqdm import tqdm

from matching.head import ResidualHead, embed_with

logger = logging.getLogger(__name__)

TRAIN_STREAM = "train"
EVAL_STREAM = "heldout"  # never used to draw a training view


# --- the sets -------------------------------------------------------------------------------------


@dataclass
class Picture:
    reference_id: int
    implant_id: int
    source: str


@dataclass
class Sets:
    train: list[Picture]
    heldout: list[Picture]  # held-out pictures (of held-out implants and, where several, of others)
    gallery: list[Picture]  # the whole catalogue, searched
    heldout_implants: set[int]
    train_implants: set[int]
    probe_views: int = 0

    def as_json(self) -> dict:
        sources: dict[str, int] = defaultdict(int)
        for p in self.train:
            sources[p.source] += 1
        return {
            "implants": len(self.train_implants | self.heldout_implants),
            "train_implants": sorted(self.train_implants),
            "heldout_implants": sorted(self.heldout_implants),
            "train_images": [p.reference_id for p in self.train],
            "heldout_images": [p.reference_id for p in self.heldout],
            "train_sources": dict(sources),
            "gallery_images": len(self.gallery),
        }


def split_sets(pictures: Sequence[Picture], *, heldout_implants: float, heldout_images: float, seed: int) -> Sets:
    """Hold out ``heldout_implants`` of the implants entirely and, of the others' pictures where an
    implant has several, ``heldout_images`` (never its last one): a split by implant image."""
    rng = np.random.default_rng([seed, 21])
    by_implant: dict[int, list[Picture]] = defaultdict(list)
    for p in pictures:
        by_implant[p.implant_id].append(p)
    implants = sorted(by_implant)
    order = [implants[i] for i in rng.permutation(len(implants))]
    n_out = min(len(implants) - 1, round(len(implants) * heldout_implants)) if len(implants) > 1 else 0
    out = set(order[:n_out])
    train, heldout = [], []
    for implant_id in implants:
        pics = by_implant[implant_id]
        if implant_id in out:
            heldout += pics
            continue
        k = min(len(pics) - 1, round(len(pics) * heldout_images))
        picked = {int(i) for i in rng.permutation(len(pics))[:k]}
        for i, p in enumerate(pics):
            (heldout if i in picked else train).append(p)
    return Sets(
        train=train,
        heldout=heldout,
        gallery=list(pictures),
        heldout_implants=out,
        train_implants=set(implants) - out,
    )


def catalogue_pictures() -> list[Picture]:
    from implants.models import ReferenceImage

    rows = (
        ReferenceImage.objects.filter(implant__is_active=True)
        .order_by("implant_id", "pk")
        .values_list("pk", "implant_id", "source")
    )
    return [Picture(pk, implant_id, source) for pk, implant_id, source in rows]


# --- the tower's trained tail (--unfreeze-blocks N) ------------------------------------------------


class TowerTail(nn.Module):
    """The visual tower from its block ``len(blocks) - n`` on: those ``n`` transformer blocks, the
    pooling, ``ln_post`` and ``proj`` — trained; the rest of the copy stays frozen (and is what
    the checkpoint stores unchanged). ``forward`` takes the tokens ``tower_tokens`` cached before
    those blocks and returns the unit-length features the embedder's ``tower_features`` would."""

    def __init__(self, visual: nn.Module, n: int):
        super().__init__()
        blocks = visual.transformer.resblocks
        if not 1 <= n <= len(blocks):
            raise TrainingRefused(f"--unfreeze-blocks {n}: a torre visual tem {len(blocks)} blocos.")
        self.first = len(blocks) - n
        self.visual = copy.deepcopy(visual).float()
        for p in self.visual.parameters():
            p.requires_grad_(False)
        for module in [*self.visual.transformer.resblocks[self.first :], self.visual.ln_post]:
            for p in module.parameters():
                p.requires_grad_(True)
        if self.visual.proj is not None:
            self.visual.proj.requires_grad_(True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        visual = self.visual
        x = tokens if visual.transformer.batch_first else tokens.transpose(0, 1)
        for block in visual.transformer.resblocks[self.first :]:
            x = block(x, attn_mask=None)
        x = x if visual.transformer.batch_first else x.transpose(0, 1)
        pooled, _ = visual._pool(x)
        if visual.proj is not None:
            pooled = pooled @ visual.proj
        return nn.functional.normalize(pooled.float(), dim=-1)


def tower_tokens(embedder, images: list, first: int) -> torch.Tensor:
    """The visual tower's tokens before its block ``first`` (a float32 CPU tensor): the frozen part,
    run once per view, what ``TowerTail`` continues from. The same steps as open_clip's
    ``VisionTransformer.forward`` (``tests/matching/test_training.py`` checks they still match)."""
    visual = embedder.model.visual
    if not images:
        return torch.zeros((0, 0, 0))
    batch = torch.stack([embedder.preprocess(img) for img in images]).to(embedder.device)
    with torch.inference_mode():
        x = visual._embeds(batch)
        x = x if visual.transformer.batch_first else x.transpose(0, 1)
        for block in visual.transformer.resblocks[:first]:
            x = block(x, attn_mask=None)
        x = x if visual.transformer.batch_first else x.transpose(0, 1)
        x = x.float().cpu()
    return x.clone()  # out of inference mode: the tail trains on these


def through(tail: TowerTail | None, x: torch.Tensor, *, batch_size: int = 64) -> torch.Tensor:
    """Cached rows to tower features: as they are (N = 0) or through the tail, batched, no grad."""
    if tail is None:
        return x
    device = next(tail.parameters()).device
    with torch.no_grad():
        out = [tail(x[s : s + batch_size].to(device)).cpu() for s in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.zeros((0, tail.visual.output_dim))


# --- views and features ---------------------------------------------------------------------------


def _grey_of(reference_id: int) -> np.ndarray:
    from implants.models import ReferenceImage
    from matching.embedder import Embedder
    from matching.fixtures import as_grey
    from matching.images import stored_image_load

    name = ReferenceImage.objects.values_list("image", flat=True).get(pk=reference_id)
    return as_grey(stored_image_load(Embedder, name))


def augmented_view(grey: np.ndarray, *, seed: int, stream: str, reference_id: int, k: int):
    """View ``k`` of a picture: film-like, then framed as the worker frames a catalogue picture."""
    from implants.synthetic_films import film_like
    from matching.canonical import reference_view

    rng = np.random.default_rng([seed, 1 if stream == TRAIN_STREAM else 2, reference_id, k])
    return reference_view(film_like(grey, rng)).image


@dataclass
class FeatureJob:
    kind: str  # gallery | query | train
    picture: Picture
    k: int = 0  # the augmented view's number (-1: the clean picture)
    group: str = ""  # queries: "in_training" | "heldout_implants"


@dataclass
class Features:
    gallery: torch.Tensor
    gallery_implants: np.ndarray
    queries: torch.Tensor
    query_implants: np.ndarray
    query_groups: list[str]
    train: torch.Tensor
    train_implants: np.ndarray
    probe: torch.Tensor
    train_views_skipped: int = 0


def plan_jobs(sets: Sets, *, views_per_image: int, eval_views: int) -> tuple[list[FeatureJob], list[FeatureJob]]:
    """(evaluation jobs: gallery and held-out queries, training jobs)."""
    evaluation = [FeatureJob("gallery", p, -1) for p in sets.gallery]
    heldout_of = defaultdict(list)
    for p in sets.heldout:
        heldout_of[p.implant_id].append(p)
    for implant_id in sorted(sets.train_implants | sets.heldout_implants):
        group = "heldout_implants" if implant_id in sets.heldout_implants else "in_training"
        sources = heldout_of.get(implant_id) or [p for p in sets.train if p.implant_id == implant_id]
        for p in sources:
            evaluation += [FeatureJob("query", p, k, group) for k in range(eval_views)]
    training = [FeatureJob("train", p, k) for k in range(views_per_image) for p in sets.train]
    return evaluation, training


def extract_features(
    embedder,
    sets: Sets,
    *,
    views_per_image: int,
    eval_views: int,
    seed: int,
    deadline: float,
    batch_size: int = 32,
    progress_file=None,
    unfreeze_blocks: int = 0,
) -> Features:
    """The tower's features of every view, with a progress bar and its ETA — or, with
    ``unfreeze_blocks``, its tokens before those blocks (``tower_tokens``). Training views stop
    at ``deadline`` (the evaluation views come first and are always complete)."""
    from matching.canonical import centre_probe_views

    evaluation, training = plan_jobs(sets, views_per_image=views_per_image, eval_views=eval_views)
    greys: dict[int, np.ndarray] = {}

    def image_of(job: FeatureJob):
        grey = greys.get(job.picture.reference_id)
        if grey is None:
            grey = greys[job.picture.reference_id] = _grey_of(job.picture.reference_id)
        if job.k < 0:
            from matching.canonical import reference_view

            return reference_view(grey).image
        stream = TRAIN_STREAM if job.kind == "train" else EVAL_STREAM
        return augmented_view(grey, seed=seed, stream=stream, reference_id=job.picture.reference_id, k=job.k)

    if unfreeze_blocks:
        first = len(embedder.model.visual.transformer.resblocks) - unfreeze_blocks

        def featurize(images):
            return tower_tokens(embedder, images, first)
    else:
        featurize = embedder.tower_features
    probe_images = [view.image for view in centre_probe_views()]
    jobs = evaluation + training
    done: list[FeatureJob] = []
    chunks: list[torch.Tensor] = []
    skipped = 0
    with tqdm(total=len(jobs) + len(probe_images), desc="vistas", unit="vista", file=progress_file) as bar:
        probe = featurize(probe_images)
        bar.update(len(probe_images))
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            if batch[0].kind == "train" and time.monotonic() > deadline:
                skipped = len(jobs) - start
                break
            chunks.append(featurize([image_of(job) for job in batch]))
            done += batch
            bar.update(len(batch))
    matrix = torch.cat(chunks) if chunks else torch.zeros((0, *probe.shape[1:]))

    def pick(kind: str) -> tuple[torch.Tensor, list[FeatureJob]]:
        rows = [i for i, job in enumerate(done) if job.kind == kind]
        return matrix[rows], [done[i] for i in rows]

    gallery, gjobs = pick("gallery")
    queries, qjobs = pick("query")
    train, tjobs = pick("train")
    return Features(
        gallery=gallery,
        gallery_implants=np.array([j.picture.implant_id for j in gjobs]),
        queries=queries,
        query_implants=np.array([j.picture.implant_id for j in qjobs]),
        query_groups=[j.group for j in qjobs],
        train=train,
        train_implants=np.array([j.picture.implant_id for j in tjobs]),
        probe=probe,
        train_views_skipped=skipped,
    )


# --- evaluation -----------------------------------------------------------------------------------


def _ranks(queries: torch.Tensor, gallery: torch.Tensor, gallery_implants: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The rank (1 = first) of each query's implant, candidates folded per implant (best picture)."""
    sims = (queries @ gallery.T).numpy()
    implants = np.unique(gallery_implants)
    per_implant = np.stack([sims[:, gallery_implants == i].max(axis=1) for i in implants], axis=1)
    order = np.argsort(-per_implant, axis=1, kind="stable")
    ranked = implants[order]
    hits = ranked == truth[:, None]
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, len(implants) + 1)


def _rates(ranks: np.ndarray) -> dict:
    n = int(ranks.size)
    return {
        "queries": n,
        "top1": round(float((ranks <= 1).mean()), 4) if n else 0.0,
        "top3": round(float((ranks <= 3).mean()), 4) if n else 0.0,
    }


def evaluate(
    head: nn.Module | None, features: Features, tail: TowerTail | None = None, probe: torch.Tensor | None = None
) -> dict:
    """top-1/top-3 of the model ``head`` (None: no head; ``tail``: the tower's trained last blocks,
    ``probe`` the probe through them when already computed) on the held-out queries: all of them,
    the implants in training, the implants held out entirely."""
    probe = through(tail, features.probe) if probe is None else probe
    with torch.no_grad():
        q = embed_with(head, through(tail, features.queries), probe)
        g = embed_with(head, through(tail, features.gallery), probe)
    ranks = _ranks(q, g, features.gallery_implants, features.query_implants)
    groups = np.array(features.query_groups)
    return {
        "all": _rates(ranks),
        "in_training": _rates(ranks[groups == "in_training"]),
        "heldout_implants": _rates(ranks[groups == "heldout_implants"]),
    }


def is_better(new: dict, running: dict) -> bool:
    """Better on the held-out set: a higher top-1, or the same top-1 and a higher top-3."""
    a, b = new["all"], running["all"]
    return (a["top1"], a["top3"]) > (b["top1"], b["top3"])


# --- training -------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    epochs: int = 300
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    scale: float = 16.0  # ArcFace s
    margin: float = 0.2  # ArcFace m (radians)
    hidden: int = 512
    seed: int = 0
    unfreeze_blocks: int = 0  # the tower's last N blocks (and ln_post/proj) trained too
    backbone_lr: float | None = None  # their learning rate; None: lr / 10


@dataclass
class Curve:
    points: list[dict] = field(default_factory=list)


def arcface_logits(
    embeddings: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor, *, scale: float, margin: float
):
    cos = embeddings @ nn.functional.normalize(centres, dim=-1).T
    theta = torch.acos(cos.clamp(-1 + 1e-6, 1 - 1e-6))
    target = torch.cos(theta + margin)
    onehot = nn.functional.one_hot(labels, cos.shape[1]).bool()
    return scale * torch.where(onehot, target, cos)


def train_head(
    start: nn.Module | None,
    features: Features,
    config: TrainConfig,
    *,
    deadline: float,
    tail: TowerTail | None = None,
    on_epoch: Callable[[dict], object] | None = None,
    progress_file=None,
) -> tuple[ResidualHead, list[dict]]:
    """ArcFace over the training implants on the cached tower features (or, with ``tail``, on the
    cached tokens through the tower's last blocks, trained at ``config.backbone_lr``); one curve
    point per epoch (mean loss, held-out top-1/top-3 of the model so far). Stops at ``deadline``."""
    torch.manual_seed(config.seed)
    dim = features.probe.shape[-1] if tail is None else tail.visual.output_dim
    head = copy.deepcopy(start) if start is not None else ResidualHead(dim, config.hidden)
    head.train()
    classes = sorted(set(features.train_implants.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[i] for i in features.train_implants.tolist()], dtype=torch.long)
    x = features.train
    with torch.no_grad():
        e0 = embed_with(head, through(tail, x), through(tail, features.probe))
        centres = torch.stack([e0[labels == i].mean(dim=0) for i in range(len(classes))])
    centres = nn.Parameter(nn.functional.normalize(centres, dim=-1))
    groups = [{"params": [*head.parameters(), centres], "lr": config.lr}]
    if tail is not None:
        backbone_lr = config.backbone_lr if config.backbone_lr is not None else config.lr / 10
        groups.append({"params": [p for p in tail.parameters() if p.requires_grad], "lr": backbone_lr})
        tail.train()
    optimiser = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    curve: list[dict] = []
    started = time.monotonic()
    generator = torch.Generator().manual_seed(config.seed)
    with _threads_for(tail):
        device = next(tail.parameters()).device if tail is not None else None
        # With a tail the centre (the probe through the blocks) is taken once per epoch, as a constant:
        # the blocks move slowly (a tenth of the head's rate), and the probe's 20-odd views through
        # them at every step would cost more than the step. The evaluation's pass gives the next one.
        probe = features.probe if tail is None else through(tail, features.probe)
        with tqdm(total=config.epochs, desc="épocas", unit="época", file=progress_file) as bar:
            for epoch in range(1, config.epochs + 1):
                if time.monotonic() > deadline:
                    break
                order = torch.randperm(len(x), generator=generator)
                total, batches = 0.0, 0
                for s in range(0, len(x), config.batch_size):
                    rows = order[s : s + config.batch_size]
                    emb = embed_with(head, x[rows] if tail is None else tail(x[rows].to(device)).cpu(), probe)
                    logits = arcface_logits(emb, centres, labels[rows], scale=config.scale, margin=config.margin)
                    loss = nn.functional.cross_entropy(logits, labels[rows])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    total += loss.item()
                    batches += 1
                head.eval()
                if tail is not None:
                    tail.eval()
                    probe = through(tail, features.probe)
                scores = evaluate(head, features, tail, probe)
                head.train()
                if tail is not None:
                    tail.train()
                point = {
                    "epoch": epoch,
                    "loss": round(total / max(1, batches), 5),
                    "heldout_top1": scores["all"]["top1"],
                    "heldout_top3": scores["all"]["top3"],
                    "heldout_implants_top1": scores["heldout_implants"]["top1"],
                    "seconds": round(time.monotonic() - started, 2),
                }
                curve.append(point)
                if on_epoch:
                    on_epoch(point)
                bar.set_postfix(loss=point["loss"], top1=point["heldout_top1"])
                bar.update(1)
    head.eval()
    if tail is not None:
        tail.eval()
    return head, curve


@contextlib.contextmanager
def _threads_for(tail: TowerTail | None) -> Iterator[None]:
    """Torch's threads while training, restored after.

    The head's matrices are small: one thread is faster than several, and much faster than
    threads fighting other processes for two shared cores (measured: 0.6 s against 11 s). The
    tower's blocks are not small: with a tail, torch keeps its threads."""
    threads = torch.get_num_threads()
    if tail is None:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def initial_loss(
    start: nn.Module | None, features: Features, config: TrainConfig, tail: TowerTail | None = None
) -> float:
    """The ArcFace loss before any step (class centres at the class means): the curve's epoch 0."""
    dim = features.probe.shape[-1] if tail is None else tail.visual.output_dim
    head = start if start is not None else ResidualHead(dim, config.hidden)
    classes = sorted(set(features.train_implants.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[i] for i in features.train_implants.tolist()], dtype=torch.long)
    with torch.no_grad():
        emb = embed_with(head, through(tail, features.train), through(tail, features.probe))
        centres = torch.stack([emb[labels == i].mean(dim=0) for i in range(len(classes))])
        logits = arcface_logits(emb, centres, labels, scale=config.scale, margin=config.margin)
        return round(float(nn.functional.cross_entropy(logits, labels)), 5)


# --- the checkpoint -------------------------------------------------------------------------------


def save_checkpoint(path: Path, embedder, head: ResidualHead, metadata: dict, tail: TowerTail | None = None) -> Path:
    """An open_clip checkpoint (``{"state_dict": ...}``): the visual tower exactly as it ran
    (float32) — or, with ``tail``, as trained (its last blocks, ``ln_post`` and ``proj``) — the
    text tower (never used here) in half precision; beside it the head and the model id
    (``matching.embedder.TRAINING_KEY``). Written whole, then renamed."""
    from matching.embedder import TRAINING_KEY

    state = {
        k: (v.detach().cpu() if k.startswith("visual.") else v.detach().cpu().half())
        for k, v in embedder.model.state_dict().items()
    }
    if tail is not None:
        state.update({f"visual.{k}": v.detach().cpu().float() for k, v in tail.visual.state_dict().items()})
    payload = {
        "state_dict": state,
        TRAINING_KEY: {**metadata, "head": {k: v.detach().cpu() for k, v in head.state_dict().items()}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)
    return path


def checkpoint_folder() -> Path:
    return Path(settings.RAIOX_CLIP_CACHE_DIR) / "trained"


# --- the whole run --------------------------------------------------------------------------------


@dataclass
class Options:
    max_minutes: float = 20.0
    device: str = ""
    views_per_image: int = 48
    eval_views: int = 4
    heldout_implants: float = 0.25
    heldout_images: float = 0.2
    seed: int = 0
    trigger: str = "manual"
    config: TrainConfig = field(default_factory=TrainConfig)


def run_training(options: Options, *, log: Callable[[str], object] = print, progress_file=None):
    """Train, evaluate against the running model on the same held-out set, save the checkpoint;
    returns the TrainingRun (finished, or failed with the reason)."""
    from matching import services
    from matching.canonical import PREPROCESS_VERSION
    from matching.embedder import Embedder, get_embedder

    started = time.monotonic()
    deadline = started + options.max_minutes * 60
    running = get_embedder()
    device = options.device or running.device
    base = running if device == running.device else Embedder(running.spec, device)
    trained = running.spec.trained or {}
    base_model_id = trained.get("base_model_id") or running.model_id
    base_weights_id = trained.get("base_weights_id") or running.spec.weights_id
    run = services.training_run_start(
        base_model_id=running.model_id,
        untrained_start=running.untrained,
        device=device,
        trigger=options.trigger,
        parameters={
            "max_minutes": options.max_minutes,
            "views_per_image": options.views_per_image,
            "eval_views": options.eval_views,
            "heldout_implants": options.heldout_implants,
            "heldout_images": options.heldout_images,
            "seed": options.seed,
            **{f"train_{k}": v for k, v in options.config.__dict__.items()},
        },
    )
    try:
        pictures = catalogue_pictures()
        sets = split_sets(
            pictures,
            heldout_implants=options.heldout_implants,
            heldout_images=options.heldout_images,
            seed=options.seed,
        )
        if not sets.train:
            raise TrainingRefused(
                "Nada para treinar: o catálogo não tem imagens de referência fora do conjunto retido."
            )
        if len(sets.train_implants) < 2:
            raise TrainingRefused("São precisos ao menos dois implantes no treino.")
        log(
            f"Treino: {len(sets.train)} imagens de {len(sets.train_implants)} implantes; retidos: "
            f"{len(sets.heldout)} imagens ({len(sets.heldout_implants)} implantes inteiros)"
        )
        unfreeze = int(options.config.unfreeze_blocks)
        if unfreeze and base.quantize:  # int8 blocks cannot be trained: the same weights in fp32
            base = Embedder(running.spec, device, quantize="")
        tail = TowerTail(base.model.visual, unfreeze).to(device) if unfreeze else None
        # The feature extraction may use half the time; the epochs the rest.
        features = extract_features(
            base,
            sets,
            views_per_image=options.views_per_image,
            eval_views=options.eval_views,
            seed=options.seed,
            deadline=started + options.max_minutes * 30,
            progress_file=progress_file,
            unfreeze_blocks=unfreeze,
        )
        if features.train_views_skipped:
            log(f"Tempo: {features.train_views_skipped} vistas de treino não extraídas (--max-minutes)")
        start_head = copy.deepcopy(base.head) if base.head is not None else None
        running_scores = evaluate(start_head, features, tail)
        loss0 = initial_loss(start_head, features, options.config, tail)
        curve = [
            {
                "epoch": 0,
                "loss": loss0,
                "heldout_top1": running_scores["all"]["top1"],
                "heldout_top3": running_scores["all"]["top3"],
                "heldout_implants_top1": running_scores["heldout_implants"]["top1"],
                "seconds": 0.0,
            }
        ]
        head, points = train_head(
            start_head.float() if start_head is not None else None,
            features,
            options.config,
            deadline=deadline,
            tail=tail,
            progress_file=progress_file,
        )
        curve += points
        new_scores = evaluate(head, features, tail)
        model_id = f"{base_model_id}+run{run.pk}"
        path = save_checkpoint(
            checkpoint_folder() / f"run{run.pk}.pt",
            base,
            head,
            {
                "model_id": model_id,
                "run": run.pk,
                "base_model_id": base_model_id,
                "base_weights_id": base_weights_id,
                "base_untrained": bool(running.untrained),
                "preprocess_version": PREPROCESS_VERSION,
                "architecture": running.spec.architecture,
                "unfrozen_blocks": unfreeze,
            },
            tail,
        )
        results = {
            "set": (
                f"{features.queries.shape[0]} vistas retidas (semente {options.seed}, fluxo {EVAL_STREAM}) "
                f"contra {features.gallery.shape[0]} imagens do catálogo"
            ),
            "running": {"model_id": running.model_id, **running_scores},
            "new": {"model_id": model_id, **new_scores},
            "better": is_better(new_scores, running_scores),
            "base_weights_id": base_weights_id,  # the configured weights its checkpoint applies over
            "train_views": int(features.train.shape[0]),
            "unfrozen_blocks": unfreeze,
            "seconds_per_epoch": round(points[-1]["seconds"] / len(points), 3) if points else None,
            "train_views_skipped": features.train_views_skipped,
        }
        return services.training_run_finish(
            run_id=run.pk,
            model_id=model_id,
            checkpoint_path=str(path),
            sets=sets.as_json(),
            curves=curve,
            results=results,
            seconds=time.monotonic() - started,
        )
    except Exception as exc:
        logger.exception("train_matcher: run %s failed", run.pk)
        message = str(exc) if isinstance(exc, TrainingRefused) else f"{type(exc).__name__}: {exc}"
        return services.training_run_fail(run_id=run.pk, message=message, seconds=time.monotonic() - started)


class TrainingRefused(Exception):
    pass


# --- the scheduled retraining -----------------------------------------------------------------------


def new_confirmed_cases() -> int:
    """Confirmed cases added to the catalogue since the last training run started (all of them when
    there was none)."""
    from implants.models import ReferenceImage, ReferenceSource
    from matching.models import TrainingRun

    cases = ReferenceImage.objects.filter(source=ReferenceSource.CONFIRMED_CASE, implant__is_active=True)
    last = TrainingRun.objects.order_by("-created_at").first()
    if last is not None:
        cases = cases.filter(created_at__gt=last.created_at)
    return cases.count()


def retrain_if_due(**overrides) -> str:
    """The scheduled job (``matching.tasks.retrain_when_enough_cases``): off unless
    ``RAIOX_AUTO_RETRAIN_MIN_NEW_CASES`` > 0; trains when at least that many confirmed cases have
    been added since the last run, evaluates, and never activates (staff do, from the admin's
    report and ``train_matcher --activate-run``)."""
    from matching.models import TrainingRun, TrainingStatus

    minimum = int(settings.RAIOX_AUTO_RETRAIN_MIN_NEW_CASES)
    if minimum <= 0:
        return "off"
    # A run still going (django-q may deliver a long task again); one killed mid-way (status left
    # "running") stops blocking once it is surely dead.
    from datetime import timedelta

    from django.utils import timezone

    recent = timezone.now() - timedelta(minutes=2 * settings.RAIOX_AUTO_RETRAIN_MAX_MINUTES + 30)
    if TrainingRun.objects.filter(status=TrainingStatus.RUNNING, created_at__gte=recent).exists():
        return "already running"
    new = new_confirmed_cases()
    if new < minimum:
        return f"waiting: {new} of {minimum} new confirmed cases"
    config = TrainConfig(**{k: v for k, v in overrides.items() if k in TrainConfig.__dataclass_fields__})
    rest = {k: v for k, v in overrides.items() if k in Options.__dataclass_fields__ and k != "config"}
    options = Options(
        max_minutes=float(settings.RAIOX_AUTO_RETRAIN_MAX_MINUTES), trigger="scheduled", config=config, **rest
    )
    with open(os.devnull, "w") as quiet:
        run = run_training(options, log=logger.info, progress_file=quiet)
    return f"run {run.pk}: {run.status}"
