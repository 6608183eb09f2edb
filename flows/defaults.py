"""The defaults of the main job, shared by `redes run` and the nightly schedule that continues its study."""

#: Sized so the whole job takes about ten minutes on a 2-core machine (see README).
RUN_DEFAULTS = dict(
    name="mnist",
    trials=200,
    timeout="7m",
    sampler="tpe",
    pruner="median",
    workers=2,
    enqueue=True,
    epochs=40,
    patience=4,
    eta_schedule=True,
    seed=0,
    train_size=50_000,
    val_size=10_000,
)
