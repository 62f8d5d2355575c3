"""``varprop train``: train an MLP on a dataset and report per-epoch curves and the test accuracy."""
from __future__ import annotations

import json
import math

from varprop.cli import add_param_option

EXIT_DIVERGED = 3      # the exit status of a run that diverged (its results are still written)
HELP = "train an MLP (Numba kernels, BLAS products) and report train/validation curves and test accuracy"
DESCRIPTION = (
    "Train a multilayer perceptron on digits (default), mnist1d, fashion-mnist[:DIR], or a .csv/.npz file "
    "of features and labels (labels are class indices 0..K-1, at least half of the K classes present). "
    "Splits are fixed by --seed; preprocessing is fitted on the training split "
    "only. Prints one line per epoch (train/validation loss and accuracy) and the final test accuracy; "
    "--json, --plot and --checkpoint write results atomically. --init auto draws each hidden layer with "
    "the variance-preserving scale derived for the activation (2/fan_in for ReLU). A run that diverges (a "
    "minibatch loss not finite or above 1000 x its reference, see varprop.nn.trainer) stops, keeps the last "
    "weights whose loss was in range, says so on stderr, still writes --json/--plot, and exits with status "
    f"{EXIT_DIVERGED}. More than {10 ** 6} epochs, or a network or --augment-copies that would not fit in the "
    "memory available, is refused (exit 2) before any work."
)

_FLOAT_OPTS = ("lr", "dropout", "weight_decay", "val_fraction", "test_fraction", "noise", "flip", "clip_norm", "mixup",
               "rotate", "zoom", "shear", "translate", "brightness", "contrast", "stochastic_depth")
_IMAGE_AUG = ("rotate", "zoom", "shear", "translate")   # with shift, flip and cutout: need an image shape
_NEW_AUG = _IMAGE_AUG + ("brightness", "contrast")
_STEP_STREAM = 1     # the per-step augmenter's stream id (the copies of --augment-copies use none)
PRETRAIN_LR = 1e-2   # Adam's rate for the autoencoders of --pretrain
MAX_EPOCHS = 10 ** 6  # nn.trainer.MAX_EPOCHS (kept here so that checking the options imports no trainer)


def add_arguments(p):
    p.add_argument("--data", default="digits",
                   help="digits | mnist1d | fashion-mnist[:DIR] | FILE.csv | FILE.npz (default digits)")
    p.add_argument("--hidden", default="256,256", help="hidden widths, comma-separated (default 256,256; "
                   "'none' for a linear model)")
    p.add_argument("--activation", default="relu", help="a registered activation (default relu)")
    add_param_option(p)
    p.add_argument("--init", default="auto",
                   help="initializer name (he_normal, xavier_uniform, ...), a distribution in fan_in and "
                        "fan_out as `varprop simulate --init` takes (\"normal(0, sqrt(2/fan_in))\"), or auto: the "
                        "scheme derived for the activation (default)")
    p.add_argument("--optimizer", default="adam",
                   help="sgd | momentum | nesterov | adagrad | rmsprop | adam | adamw (default adam)")
    p.add_argument("--lr", default="1e-3", help="learning rate > 0 (default 1e-3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 10; when resuming, the saved run's)")
    p.add_argument("--batch-size", type=int, default=128, help="minibatch size (default 128)")
    p.add_argument("--loss", default="cross_entropy", help="cross_entropy | hinge (default cross_entropy)")
    p.add_argument("--dropout", default="0", help="probability of dropping a hidden unit (default 0)")
    p.add_argument("--batchnorm", action="store_true", help="batch normalization before each hidden activation")
    p.add_argument("--weight-decay", default=None,
                   help="weight decay on weights only, PyTorch's meaning: coupled L2 for every optimizer, decoupled "
                        "for adamw (default: the optimizer's own, 0, or 0.01 for adamw)")
    p.add_argument("--schedule", default="constant", help="constant | step | cosine | warmup (default constant)")
    p.add_argument("--clip-norm", default=None, help="clip the global gradient norm to this value")
    p.add_argument("--early-stopping", action="store_true",
                   help="stop when the validation loss stalls (see --patience) and restore the best weights")
    p.add_argument("--patience", type=int, default=5, help="epochs without improvement before stopping (5)")
    p.add_argument("--preprocess", default="none",
                   help="none | center | standardize | whiten, fitted on the training split (default none)")
    p.add_argument("--val-fraction", default="0.1", help="fraction of the training rows held out (default 0.1)")
    p.add_argument("--test-fraction", default="0.2",
                   help="test fraction for datasets without a test set (default 0.2)")
    p.add_argument("--augment-copies", type=int, default=0, metavar="K",
                   help="add K augmented copies of the training split (see --shift, --flip, --noise)")
    p.add_argument("--augment", action="store_true",
                   help="augment every training batch afresh (see --shift, --flip, --noise), keyed by epoch and "
                        "step so --resume repeats it")
    p.add_argument("--mixup", default="0", metavar="ALPHA",
                   help="mixup of each training batch with lam ~ Beta(ALPHA, ALPHA) (cross_entropy; default 0, off)")
    p.add_argument("--shift", type=int, default=0, help="augmentation: random shifts up to this many pixels")
    p.add_argument("--flip", default="0", help="augmentation: probability of a horizontal flip")
    p.add_argument("--noise", default="0", help="augmentation: std of added Gaussian noise")
    p.add_argument("--rotate", default="0", metavar="DEG", help="augmentation: random rotations up to DEG degrees")
    p.add_argument("--zoom", default="0", metavar="Z", help="augmentation: random zoom by a factor in [1-Z, 1+Z]")
    p.add_argument("--shear", default="0", metavar="DEG", help="augmentation: random shear up to DEG degrees")
    p.add_argument("--translate", default="0", metavar="PX",
                   help="augmentation: random sub-pixel translations up to PX pixels (bilinear)")
    p.add_argument("--brightness", default="0", metavar="B", help="augmentation: add b ~ U(-B, B) to each image")
    p.add_argument("--contrast", default="0", metavar="C",
                   help="augmentation: scale each image about its mean by k ~ U(1-C, 1+C)")
    p.add_argument("--cutout", type=int, default=0, metavar="K", help="augmentation: zero a random K x K square")
    p.add_argument("--tta", type=int, default=0, metavar="V",
                   help="also report the test accuracy averaged over V fixed views of the augmentation options "
                        "(test-time augmentation; the first view is the image itself)")
    p.add_argument("--residual", action="store_true",
                   help="residual blocks x + phi(W x + b) for hidden layers of the previous layer's width")
    p.add_argument("--stochastic-depth", default="0", metavar="P",
                   help="with --residual: skip block l of L in training with probability l/L * P, scale it by its "
                        "survival probability at test time (Huang et al. 2016)")
    p.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="train K networks from seeds derived from --seed (the first is --seed's own run) and "
                        "report the test accuracy of their averaged probabilities beside the members' (the members "
                        "differ in weights, batch order and masks; the split and any per-step augmentation follow "
                        "--seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, weights, order and masks (default 0)")
    p.add_argument("--json", metavar="FILE", help="write config, per-epoch records and test accuracy as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="plot the loss and accuracy curves")
    p.add_argument("--checkpoint", metavar="FILE", help="save the training state here after each epoch")
    p.add_argument("--resume", metavar="FILE", help="continue the run saved in FILE (same --data and --seed)")
    p.add_argument("--transfer", metavar="FILE",
                   help="transfer learning: start from the network saved in checkpoint FILE (trained on another "
                        "task with the same inputs), give it a new output layer for this dataset, freeze its "
                        "lower layers (see --freeze) and train")
    p.add_argument("--freeze", type=int, default=None, metavar="K",
                   help="with --transfer: freeze the first K hidden layers (default all of them)")
    p.add_argument("--pretrain", type=int, default=0, metavar="EPOCHS",
                   help="greedy layer-wise pretraining: train each hidden layer EPOCHS epochs as an autoencoder "
                        "on the outputs of the frozen layers below (no labels; Adam, lr 1e-2, the run's batch size), then "
                        "fine-tune with the run's optimizer (default 0, off)")
    add_practice_arguments(p)


def add_practice_arguments(p):
    """Sparse activations, train-time noise, multi-task heads and semi-supervised training."""
    g = p.add_argument_group("sparsity, noise, multi-task and semi-supervised training")
    g.add_argument("--activation-l1", default="0", metavar="LAM",
                   help="L1 penalty LAM/m sum|a| on the hidden activations; per-layer zero fractions are printed")
    g.add_argument("--input-noise", default="0", metavar="SIGMA", help="train-time N(0, SIGMA^2) on the inputs")
    g.add_argument("--hidden-noise", default="0", metavar="SIGMA",
                   help="train-time N(0, SIGMA^2) on every hidden layer's output")
    g.add_argument("--weight-noise", default="0", metavar="SIGMA",
                   help="train-time N(0, SIGMA^2) on every weight for the step's forward and backward pass")
    g.add_argument("--labelled-fraction", default="1", metavar="F",
                   help="keep the labels of a stratified fraction F of the training split (default 1: all); "
                        "the rest are unlabelled, used by --aux-task and --semi-supervised, else dropped")
    g.add_argument("--aux-task", default=None, choices=("left-mean", "pooled", "parity"),
                   help="multi-task: a second head on the shared trunk (left-mean: regress the mean intensity "
                        "of the left half; pooled: regress the 2x2-pooled image; parity: classify odd/even)")
    g.add_argument("--aux-weight", default="1", metavar="W", help="weight of the auxiliary head's loss (default 1)")
    g.add_argument("--semi-supervised", action="store_true",
                   help="train on the unlabelled rows too: pseudo-labels and a two-view consistency term")
    g.add_argument("--pseudo-threshold", default="0.95", metavar="P", help="pseudo-label confidence (0.95)")
    g.add_argument("--consistency", default="1", metavar="W", help="weight of the consistency term (1)")
    g.add_argument("--view-noise", default="0.1", metavar="SIGMA", help="semi-supervised views: input noise (0.1)")
    g.add_argument("--view-shift", type=int, default=0, metavar="PX",
                   help="semi-supervised views: random image shifts up to PX pixels (0)")


_PRACTICE_FLOATS = ("activation_l1", "input_noise", "hidden_noise", "weight_noise", "labelled_fraction",
                    "aux_weight", "pseudo_threshold", "consistency", "view_noise")


def check_practice_args(args, v: dict) -> None:
    """Validate the options of :func:`add_practice_arguments` into ``v``."""
    for name in _PRACTICE_FLOATS:
        v[name] = _float(args, name)
    for name in ("activation_l1", "input_noise", "hidden_noise", "weight_noise", "aux_weight", "consistency",
                 "view_noise"):
        if v[name] < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if not 0.0 < v["labelled_fraction"] <= 1.0:
        raise ValueError(f"--labelled-fraction must be in (0, 1], got {args.labelled_fraction}")
    if not 0.0 < v["pseudo_threshold"] <= 1.0:
        raise ValueError(f"--pseudo-threshold must be in (0, 1], got {args.pseudo_threshold}")
    if args.view_shift < 0:
        raise ValueError(f"--view-shift must be >= 0, got {args.view_shift}")
    special = args.aux_task is not None or args.semi_supervised
    if args.aux_task is not None and args.semi_supervised:
        raise ValueError("--aux-task and --semi-supervised exclude each other")
    if args.semi_supervised and v["labelled_fraction"] >= 1.0:
        raise ValueError("--semi-supervised needs unlabelled rows: --labelled-fraction below 1")
    if special and (args.augment or args.augment_copies or v["mixup"]):
        raise ValueError("--aux-task and --semi-supervised do not combine with --augment, --augment-copies or --mixup")
    if special and args.loss != "cross_entropy":
        raise ValueError("--aux-task and --semi-supervised need --loss cross_entropy")
    if special and (args.resume or args.transfer):
        raise ValueError("--aux-task and --semi-supervised start a run afresh (no --resume or --transfer)")


def practice_setup(args, v, arrays, n_classes: int):
    """The training arrays and loss of a few-labels, multi-task or semi-supervised run.

    Returns ``(arrays, loss, n_out)``; ``loss`` is None for an ordinary run. With --aux-task the
    validation and test targets carry the auxiliary column(s) too (the reported accuracy is the
    digit head's)."""
    import numpy as np
    X_train, y_train, X_val, y_val, X_test, y_test = arrays
    f = v["labelled_fraction"]
    if args.aux_task is None and not args.semi_supervised and f >= 1.0:
        return arrays, None, n_classes
    from varprop.nn.semisupervised import mask_labels, oversample_labelled
    ym = mask_labels(np.asarray(y_train), f, args.seed) if f < 1.0 else np.asarray(y_train)
    if args.semi_supervised:
        from varprop.nn.semisupervised import SemiSupervisedLoss
        X, y = oversample_labelled(X_train, ym)
        loss = SemiSupervisedLoss(v["pseudo_threshold"], 1.0, v["consistency"], v["view_noise"], args.view_shift)
        return (X, y, X_val, y_val, X_test, y_test), loss, n_classes
    if args.aux_task is None:
        lab = ym >= 0
        return (X_train[lab], ym[lab], X_val, y_val, X_test, y_test), None, n_classes
    from varprop.nn.multitask import MultiTaskLoss, aux_targets
    heads, T = aux_targets(args.aux_task, X_train, ym, v["aux_weight"], n_classes)
    rows = oversample_labelled(np.arange(len(T)), ym)[0] if f < 1.0 else np.arange(len(T))
    Tv = aux_targets(args.aux_task, X_val, y_val, v["aux_weight"], n_classes)[1] if len(y_val) else y_val
    Tt = aux_targets(args.aux_task, X_test, y_test, v["aux_weight"], n_classes)[1]
    loss = MultiTaskLoss(heads)
    return (X_train[rows], T[rows], X_val, Tv, X_test, Tt), loss, loss.n_out


def practice_kwargs(v) -> dict:
    """The trainer's activation-penalty and noise keywords."""
    return {k: v[k] for k in ("activation_l1", "input_noise", "hidden_noise", "weight_noise") if v.get(k)}


def _float(args, name) -> float:
    from varprop.expr import parse_finite
    text = getattr(args, name)
    return None if text is None else parse_finite(text, f"--{name.replace('_', '-')}")


def parse_hidden(text: str) -> list[int]:
    """'256,256' -> [256, 256]; 'none' or '' -> [] (a linear model)."""
    text = text.strip().lower()
    if text in ("", "none"):
        return []
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"--hidden must be positive integers separated by commas, got {text!r}")
        out.append(int(part))
    return out


def check_args(args) -> dict:
    """Validate every option before any data is loaded; returns the numeric options."""
    v = {name: _float(args, name) for name in _FLOAT_OPTS}
    if v["lr"] <= 0:
        raise ValueError(f"--lr must be > 0, got {args.lr}")
    if not 0.0 <= v["dropout"] < 1.0:
        raise ValueError(f"--dropout must be a probability in [0, 1), got {args.dropout}")
    if v["weight_decay"] is not None and v["weight_decay"] < 0:
        raise ValueError(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if v["clip_norm"] is not None and v["clip_norm"] <= 0:
        raise ValueError(f"--clip-norm must be > 0, got {args.clip_norm}")
    if args.epochs is not None and not 1 <= args.epochs <= MAX_EPOCHS:
        raise ValueError(f"--epochs must be in [1, {MAX_EPOCHS}] (the documented ceiling), got {args.epochs}")
    parse_hidden(args.hidden)       # refused before any data is loaded
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.patience < 1:
        raise ValueError(f"--patience must be >= 1, got {args.patience}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.augment_copies < 0 or args.shift < 0 or v["noise"] < 0 or not 0 <= v["flip"] <= 1:
        raise ValueError("--augment-copies, --shift and --noise must be >= 0 and --flip in [0, 1]")
    for name in _NEW_AUG:
        if v[name] < 0:
            raise ValueError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if v["zoom"] >= 1:
        raise ValueError(f"--zoom must be in [0, 1), got {args.zoom}")
    if v["shear"] >= 90:
        raise ValueError(f"--shear must be below 90 degrees, got {args.shear}")
    if args.cutout < 0:
        raise ValueError(f"--cutout must be >= 0, got {args.cutout}")
    has_aug = bool(args.shift or v["flip"] or v["noise"] or args.cutout or any(v[k] for k in _NEW_AUG))
    if args.augment_copies and not has_aug:
        raise ValueError("--augment-copies needs an augmentation: --shift, --flip, --noise, --rotate, --zoom, --shear, "
                         "--translate, --brightness, --contrast or --cutout")
    if args.augment and not has_aug:
        raise ValueError("--augment needs an augmentation: --shift, --flip, --noise, --rotate, --zoom, --shear, "
                         "--translate, --brightness, --contrast or --cutout")
    if has_aug and not (args.augment or args.augment_copies or args.tta > 1):
        raise ValueError("--shift, --flip, --noise, --rotate, --zoom, --shear, --translate, --brightness, --contrast "
                         "and --cutout need --augment (per step), --augment-copies K or --tta V")
    if args.tta < 0:
        raise ValueError(f"--tta must be >= 0, got {args.tta}")
    if args.tta > 1 and not has_aug:
        raise ValueError("--tta needs an augmentation to draw its views from (--rotate, --shift, ...)")
    if not 0 <= v["stochastic_depth"] < 1:
        raise ValueError(f"--stochastic-depth must be a probability in [0, 1), got {args.stochastic_depth}")
    if v["stochastic_depth"] and not args.residual:
        raise ValueError("--stochastic-depth needs --residual")
    if args.ensemble < 1:
        raise ValueError(f"--ensemble must be >= 1, got {args.ensemble}")
    if args.ensemble > 1 and (args.resume or args.checkpoint):
        raise ValueError("--ensemble trains several networks: it excludes --resume and --checkpoint")
    if v["mixup"] < 0:
        raise ValueError(f"--mixup must be >= 0 (0 is off), got {args.mixup}")
    if v["mixup"] and args.loss != "cross_entropy":
        raise ValueError("--mixup needs --loss cross_entropy (mixed targets are probabilities)")
    if args.loss not in ("cross_entropy", "hinge"):
        raise ValueError(f"--loss must be cross_entropy or hinge, got {args.loss!r}")
    if args.resume and args.transfer:
        raise ValueError("--resume and --transfer exclude each other")
    if args.freeze is not None and (not args.transfer or args.freeze < 0):
        raise ValueError("--freeze K needs --transfer and K >= 0")
    if args.pretrain < 0 or args.pretrain > MAX_EPOCHS:
        raise ValueError(f"--pretrain must be in [0, {MAX_EPOCHS}] epochs per layer, got {args.pretrain}")
    if args.pretrain and (args.resume or args.transfer or args.augment):
        raise ValueError("--pretrain starts a new network from the preprocessed training rows: it excludes "
                         "--resume, --transfer and --augment")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise ValueError(f"--plot must name a .png file, got {args.plot!r}")
    check_practice_args(args, v)
    return v


def prepare_data(args, v):
    """Load and split the dataset, fit the preprocessing on the training split, augment if asked.

    Returns ``(ds, arrays, step_augment)``: ``step_augment`` is None or the trainer's per-batch
    ``augment``. Shifts, flips and noise act on the images as loaded, so with ``--augment`` the
    training rows stay as loaded and ``step_augment`` augments a batch, then preprocesses it (mixup
    alone commutes with the affine preprocessing and mixes preprocessed rows).
    """
    import numpy as np

    from varprop.memory import check as check_memory
    from varprop.nn import augment, data, preprocess

    ds = data.load(args.data, seed=args.seed, val_fraction=v["val_fraction"], test_fraction=v["test_fraction"])
    needs_image = bool(args.shift or v["flip"] or args.cutout or any(v[k] for k in _IMAGE_AUG))
    image = ds.image_shape if needs_image else None
    if needs_image and ds.image_shape is None:
        raise ValueError(f"--shift, --flip, --rotate, --zoom, --shear, --translate and --cutout need image data "
                         f"(digits, fashion-mnist); {ds.name} has no image shape")
    prep = preprocess.get(args.preprocess).fit(ds.X_train)
    X_val, X_test = (prep.transform(a) if len(a) else a for a in (ds.X_val, ds.X_test))
    X_raw, y_train = ds.X_train, ds.y_train
    if args.augment_copies:
        # the copies, their concatenation and its preprocessed version, before any is made
        rows = (args.augment_copies + 1) * ds.X_train.shape[0]
        check_memory(3 * rows * ds.X_train.shape[1] * ds.X_train.dtype.itemsize,
                     f"--augment-copies {args.augment_copies}",
                     f"{rows} rows of {ds.X_train.shape[1]} features; use fewer copies or --augment (per step)")
        aug = augment.Augment(image, shift=args.shift, flip=v["flip"], noise=v["noise"], seed=args.seed,
                              **image_options(args, v))
        # augment the images as loaded; the copies are preprocessed with the statistics of the originals
        copies = [aug(ds.X_train, ds.y_train, epoch=k, step=0)[0] for k in range(args.augment_copies)]
        X_raw = np.concatenate([X_raw, *copies])
        y_train = np.concatenate([ds.y_train] * (args.augment_copies + 1))
    step_augment = None
    if args.augment or v["mixup"]:
        per_step = augment.Augment(image if args.augment else None, shift=args.shift if args.augment else 0,
                                   flip=v["flip"] if args.augment else 0.0, noise=v["noise"] if args.augment else 0.0,
                                   mixup=v["mixup"], n_classes=ds.n_classes, seed=args.seed, stream=_STEP_STREAM,
                                   **(image_options(args, v) if args.augment else {}))
        step_augment = _then(per_step, prep) if args.augment else per_step
    X_train = X_raw if args.augment else prep.transform(X_raw)
    return ds, (X_train, y_train, X_val, ds.y_val, X_test, ds.y_test), step_augment


def image_options(args, v) -> dict:
    """The Augment keywords of --rotate, --zoom, --shear, --translate, --brightness, --contrast, --cutout."""
    return {**{k: v[k] for k in _NEW_AUG}, "cutout": args.cutout}


def tta_accuracy(args, v, ds, trainer) -> float:
    """Test accuracy of the probabilities averaged over --tta views of the test images as loaded (the
    augmentation options' Augment, :meth:`~varprop.nn.augment.Augment.views`), each then preprocessed as
    the training split was."""
    import numpy as np

    from varprop.nn import augment, preprocess
    needs_image = bool(args.shift or v["flip"] or args.cutout or any(v[k] for k in _IMAGE_AUG))
    aug = augment.Augment(ds.image_shape if needs_image else None, shift=args.shift, flip=v["flip"],
                          noise=v["noise"], seed=args.seed, **image_options(args, v))
    prep = preprocess.get(args.preprocess).fit(ds.X_train)
    proba = augment.tta_average(trainer.predict_output, ds.X_test, aug, args.tta, transform=prep.transform)
    return float(np.mean(proba.argmax(axis=1) == ds.y_test))


def train_ensemble_members(args, v, ds, arrays, step_augment, first):
    """Members 1..K-1 of --ensemble K (member 0 is ``first``, the run of --seed), trained on the same split
    with seeds :func:`varprop.nn.ensemble.member_seed` (--seed, k); returns the K trainers."""
    import argparse

    from varprop.nn.ensemble import member_seed
    X_train, y_train, X_val, y_val = arrays[:4]
    has_val = len(y_val) > 0
    members = [first]
    for k in range(1, args.ensemble):
        margs = argparse.Namespace(**vars(args))
        margs.seed = member_seed(args.seed, k)
        t = build_trainer(margs, v, ds, None, step_augment)
        h = t.fit(X_train, y_train, X_val if has_val else None, y_val if has_val else None)
        if h.diverged:
            raise ValueError(f"--ensemble: member {k} (seed {margs.seed}) diverged: {h.message}")
        members.append(t)
    return members


def _then(aug, prep):
    """``aug`` on the batch as loaded, then the preprocessing fitted on the training split."""
    def augment(xb, yb, epoch, step):
        xa, ya = aug(xb, yb, epoch, step)
        return prep.transform(xa), ya
    augment.config = aug.config
    return augment


def build_trainer(args, v, ds, on_epoch, augment=None, loss=None, n_out=None):
    from varprop.activations import get, parse_params
    from varprop.nn.estimator import auto_init
    from varprop.nn.network import build_mlp
    from varprop.nn.optim import get_optimizer
    from varprop.nn.trainer import Trainer

    params = parse_params(args.param)
    act = get(args.activation, **params)
    str_params = {k: str(val) for k, val in act.params.items()}
    if args.resume:
        overrides = {"progress": None, "callback": on_epoch, "checkpoint": args.checkpoint or args.resume,
                     "augment": augment}
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        trainer = Trainer.from_checkpoint(args.resume, **overrides)
        saved = _saved_augment(args.resume)
        if saved != trainer._augment_config():
            raise ValueError(f"--resume: the saved run's per-step augmentation was {saved}, these options give "
                             f"{trainer._augment_config()}; pass the same --augment, --shift, --flip, --noise, "
                             f"--mixup and --seed")
        saved_hooks = {k: getattr(trainer.hooks, k) for k in ("activation_l1", "input_noise", "hidden_noise",
                                                               "weight_noise")}
        if {k: val for k, val in saved_hooks.items() if val} != practice_kwargs(v):
            raise ValueError(f"--resume: the saved run used {saved_hooks}; pass the same --activation-l1, "
                             f"--input-noise, --hidden-noise and --weight-noise")
        if trainer.network.n_in != ds.n_features or trainer.network.n_out != ds.n_classes:
            raise ValueError(f"--resume: the saved network maps {trainer.network.n_in} -> {trainer.network.n_out}, "
                             f"the data has {ds.n_features} features and {ds.n_classes} classes")
        return trainer
    init, output_init = auto_init(act.name, str_params) if args.init == "auto" else (args.init, None)
    if args.transfer:
        net = transfer_network(args.transfer, ds.n_features, ds.n_classes, args.freeze, args.seed,
                               output_init or init)
    else:
        check_training_memory(args, ds, act.arity)
        net = build_mlp(ds.n_features, parse_hidden(args.hidden), n_out or ds.n_classes, activation=act.name,
                        init=init,
                        dropout=v["dropout"], batchnorm=args.batchnorm, seed=args.seed, params=str_params,
                        output_init=output_init, residual=bool(args.residual),
                        stochastic_depth=v["stochastic_depth"])
    return Trainer(net, loss or args.loss, get_optimizer(args.optimizer, lr=v["lr"]), batch_size=args.batch_size,
                   epochs=10 if args.epochs is None else args.epochs, seed=args.seed,
                   weight_decay=v["weight_decay"], schedule=args.schedule, clip_norm=v["clip_norm"],
                   early_stopping=args.early_stopping, patience=args.patience, progress=None,
                   checkpoint=args.checkpoint, callback=on_epoch, augment=augment, **practice_kwargs(v))


def check_training_memory(args, ds, arity: int = 1) -> int:
    """The bytes this run's network and training state take (:func:`varprop.nn.trainer.memory_estimate`),
    or a ValueError naming --hidden when they exceed the memory available."""
    from varprop.memory import check
    from varprop.nn.network import mlp_shapes
    from varprop.nn.trainer import memory_estimate

    hidden = parse_hidden(args.hidden)
    shapes = mlp_shapes(ds.n_features, hidden, ds.n_classes, arity)
    need = memory_estimate(shapes, min(args.batch_size, len(ds.y_train)), args.optimizer.lower(),
                           ds.X_train.dtype.itemsize)
    n_params = sum(r * c + c for r, c in shapes)
    return check(need, f"--hidden {args.hidden}",
                 f"{n_params:.3g} parameters for {ds.n_features} inputs and {ds.n_classes} classes; "
                 "use narrower hidden layers")


def _saved_augment(path):
    """The per-step augmentation recorded in checkpoint ``path`` (None for runs saved without one)."""
    from varprop.nn import checkpoint

    config, _ = checkpoint.read(path)
    return config.get("trainer", {}).get("augment")


def transfer_network(path, n_features: int, n_classes: int, freeze, seed: int, head_init="lecun_normal"):
    """The network saved in checkpoint ``path`` with a fresh output layer of ``n_classes`` units and its
    first ``freeze`` hidden layers frozen (all when None).

    A hidden layer is a block that starts at a dense (or residual) layer and runs up to the next one, so
    its batch norm and its dropout go with it.
    """
    from varprop.nn import checkpoint
    from varprop.nn.layers import Dense, Residual
    from varprop.nn.network import Network

    config, arrays = checkpoint.read(path)
    try:
        net = Network.from_config(config["trainer"]["network"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"--transfer: {path!r} holds no network ({exc})") from None
    net.load_state_arrays(arrays)
    if net.n_in != n_features:
        raise ValueError(f"--transfer: the saved network takes {net.n_in} inputs, the data has {n_features} features")
    net.replace_head(n_classes, init=head_init, seed=seed)
    starts = [i for i, layer in enumerate(net.layers[:-1]) if isinstance(layer, (Dense, Residual))]
    k = len(starts) if freeze is None else int(freeze)
    if k > len(starts):
        raise ValueError(f"--freeze {k}: the saved network has only {len(starts)} hidden layers")
    net.freeze(starts[k] if k < len(starts) else len(net.layers) - 1)
    return net


def describe(network_config: dict) -> tuple[list, str]:
    """(hidden widths, hidden activation) of a network from its configuration (a resumed or transferred
    network is described by what was saved, not by --hidden/--activation)."""
    widths, acts = [], []

    def visit(layers):
        for c in layers:
            if c["type"] == "Residual":
                visit(c["branch"])
            elif c["type"] == "Dense":
                widths.append(c["n_out"])
                acts.append(c["activation"])
            elif c["type"] == "Activation" and acts:
                acts[-1] = c["activation"]

    visit(network_config["layers"])
    return widths[:-1], (acts[0] if len(acts) > 1 else "linear")


def epoch_line(rec: dict, total: int) -> str:
    def f(x):
        return "   -   " if x is None else f"{x:.4f}"
    return (f"epoch {rec['epoch']:>3}/{total}  train loss {f(rec['train_loss'])} acc {f(rec['train_acc'])}  "
            f"val loss {f(rec['val_loss'])} acc {f(rec['val_acc'])}  {rec['seconds']:.3f}s"
            + ("  zeros " + ",".join("-" if z is None else f"{z:.3f}" for z in rec["zero_fraction"])
               if rec.get("zero_fraction") else ""))


def plot_history(path, epochs: list, title: str) -> str:
    """Loss and accuracy against epoch, train and validation, as a PNG written atomically.

    The PNG carries no software version or date, so the same curves give the same bytes.
    """
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    from varprop.io import atomic_write_bytes

    e = [r["epoch"] for r in epochs]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        for split, style in (("train", "-o"), ("val", "--s")):
            ys = [r[f"{split}_{key}"] for r in epochs]
            if any(y is not None for y in ys):
                ax.plot(e, [math.nan if y is None else y for y in ys], style, ms=3,
                        label="train" if split == "train" else "validation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def run(args) -> int:
    import sys

    from varprop.io import atomic_write_text

    v = check_args(args)
    ds, arrays, step_augment = prepare_data(args, v)
    arrays, practice_loss, n_out = practice_setup(args, v, arrays, ds.n_classes)
    X_train, y_train, X_val, y_val, X_test, y_test = arrays
    print(ds.summary() + (f"; {args.augment_copies} augmented copies" if args.augment_copies else "")
          + ("; every batch augmented" if args.augment else "") + (f"; mixup {v['mixup']:g}" if v["mixup"] else ""))
    total = [0]

    def on_epoch(rec):
        print(epoch_line(rec, total[0]), flush=True)

    trainer = None
    try:
        trainer = build_trainer(args, v, ds, on_epoch, step_augment, practice_loss, n_out)
        total[0] = trainer.epochs
        print(f"model: {trainer.network!r}, {args.optimizer if not args.resume else trainer.optimizer.name} "
              f"lr {trainer.base_lr:g}, batch {trainer.batch_size}, {trainer.epochs} epochs"
              + (f" (resuming after epoch {trainer.epoch}, step {trainer.batch})" if args.resume else ""),
              flush=True)
        pretrained = _pretrain(args, trainer, X_train)
        has_val = len(y_val) > 0
        history = trainer.fit(X_train, y_train, X_val if has_val else None, y_val if has_val else None)
    except KeyboardInterrupt:
        if trainer is not None and trainer.checkpoint:
            print(f"varprop: interrupted; resume with --resume {trainer.checkpoint}", file=sys.stderr)
        raise
    if history.message:
        print(f"varprop: {history.message}" if history.diverged else history.message,
              file=sys.stderr if history.diverged else sys.stdout)
    test_loss, test_acc = trainer.evaluate(X_test, y_test)
    print(f"test accuracy {test_acc:.4f} (loss {test_loss:.4f}, {len(y_test)} samples)")
    extra = {}
    if args.tta > 1:
        extra["tta_test_acc"] = tta_accuracy(args, v, ds, trainer)
        print(f"test accuracy with test-time augmentation over {args.tta} views {extra['tta_test_acc']:.4f}")
    if args.ensemble > 1:
        import numpy as np

        from varprop.nn.ensemble import average_proba, member_seed
        members = train_ensemble_members(args, v, ds, (X_train, y_train, X_val, y_val), step_augment, trainer)
        probas = [t.predict_output(X_test) for t in members]
        accs = [float(np.mean(p.argmax(axis=1) == y_test)) for p in probas]
        ens_acc = float(np.mean(average_proba(probas).argmax(axis=1) == y_test))
        extra["ensemble"] = {"members": args.ensemble, "seeds": [member_seed(args.seed, k) for k in range(args.ensemble)],
                             "member_test_acc": accs, "member_mean_test_acc": float(np.mean(accs)),
                             "test_acc": ens_acc}
        print(f"ensemble of {args.ensemble}: test accuracy {ens_acc:.4f} (members {', '.join(f'{a:.4f}' for a in accs)}; "
              f"mean {np.mean(accs):.4f})")
    diagnosis = None
    if practice_loss is None:       # the lecture's table reads one classification head's errors
        from varprop.nn.diagnostics import diagnose_training
        diagnosis = diagnose_training(trainer, None if args.augment else X_train, y_train,
                                      X_val if has_val else None, y_val, history)
        print(diagnosis["text"])
    epochs = [{**{k: r.get(k) for k in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")},
               **{k: r[k] for k in ("zero_fraction", "activation_penalty") if k in r}} for r in history.epochs]
    network = trainer.network.config()
    hidden, activation = describe(network)
    if args.json:
        config = {"data": args.data, "dataset": ds.name, "n_features": ds.n_features, "n_classes": ds.n_classes,
                  "n_train": int(len(y_train)), "n_val": int(len(y_val)), "n_test": int(len(y_test)),
                  "hidden": hidden, "activation": activation, "params": list(args.param),
                  "init": args.init, "optimizer": trainer.optimizer.name, "lr": trainer.base_lr,
                  "epochs": trainer.epochs, "batch_size": trainer.batch_size, "loss": trainer.loss.name,
                  "dropout": v["dropout"], "batchnorm": bool(args.batchnorm), "weight_decay": _effective_decay(trainer),
                  "schedule": args.schedule, "clip_norm": v["clip_norm"], "early_stopping": trainer.early_stopping,
                  "preprocess": args.preprocess, "augment_copies": args.augment_copies, "shift": args.shift,
                  "flip": v["flip"], "noise": v["noise"], "augment": bool(args.augment), "mixup": v["mixup"],
                  **image_options(args, v), "tta": args.tta, "residual": bool(args.residual),
                  "stochastic_depth": v["stochastic_depth"], "ensemble": args.ensemble,
                  "seed": args.seed, "resumed_from": args.resume,
                  "transferred_from": args.transfer, "frozen": trainer.network.frozen_names(),
                  "network": network, **{k: v[k] for k in _PRACTICE_FLOATS},
                  "aux_task": args.aux_task, "semi_supervised": bool(args.semi_supervised),
                  "view_shift": args.view_shift}
        out = {"config": config, "epochs": epochs, "test_acc": test_acc, "test_loss": test_loss,
               "diverged": history.diverged, "diverged_epoch": history.diverged_epoch,
               "diverged_step": history.diverged_step, "stopped_early": history.stopped_early,
               "message": history.message, **extra}
        out.update(pretrain=pretrained, diagnosis=diagnosis)
        atomic_write_text(args.json, json.dumps(_finite(out), indent=2, sort_keys=True, allow_nan=False) + "\n")
    if args.plot:
        plot_history(args.plot, epochs, f"{ds.name}: MLP {'-'.join(map(str, [ds.n_features, *hidden, ds.n_classes]))} "
                                        f"{activation}, {trainer.optimizer.name} lr {trainer.base_lr:g}, "
                                        f"test acc {test_acc:.4f}")
    return EXIT_DIVERGED if history.diverged else 0


def _pretrain(args, trainer, X_train) -> dict | None:
    """Greedy layer-wise pretraining of the new network before training (``--pretrain``), one line per layer."""
    if not args.pretrain:
        return None
    from varprop.nn.pretrain import pretrain

    def line(rec):
        print(f"pretrain layer {rec['layer']}: width {rec['width']}, reconstruction mse {rec['loss'][0]:.4f} -> "
              f"{rec['final_mse']:.4f}" + (" (diverged; kept the last good weights)" if rec["diverged"] else ""),
              flush=True)
    records = pretrain(trainer.network, X_train, args.pretrain, optimizer="adam", lr=PRETRAIN_LR,
                       batch_size=trainer.batch_size, seed=args.seed, callback=line)
    return {"epochs": args.pretrain, "layers": records}


def _finite(x):
    """JSON-ready: numpy scalars to Python, non-finite floats to null (JSON has no NaN)."""
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _effective_decay(trainer) -> float:
    """The decay the run used: the trainer's when given, else the optimizer's own (AdamW's is decoupled)."""
    if trainer.weight_decay is not None:
        return trainer.weight_decay
    opt = trainer.optimizer
    return opt.decoupled_decay if opt.name == "adamw" else opt.weight_decay
