"""Job params stored flat, in the shape the API and the launch forms accept them.

Before, train_reward, train_dpo and evaluate kept their training settings under "config":
{"snapshot": 3, "policy": 1, "config": {"beta": 0.1, ...}}; now {"snapshot": 3, "policy": 1,
"beta": 0.1, ...}, so posting a job's params back launches the same job. Backwards, every key
that is not one of the kind's own goes back under "config". The kinds' own keys are frozen
here, as they stood: a later checker may name others.
"""

from django.db import migrations

OWN = {
    "train_reward": ("snapshot", "base"),
    "train_dpo": ("snapshot", "policy"),
    "evaluate": ("policy", "reward", "prompt_limit"),
}


def flatten(params: dict) -> dict:
    config = params.get("config")
    if not isinstance(config, dict):
        return params
    return {**{k: v for k, v in params.items() if k != "config"}, **config}


def nest(params: dict, own: tuple[str, ...]) -> dict:
    if not params or "config" in params:
        return params
    return {
        **{k: v for k, v in params.items() if k in own},
        "config": {k: v for k, v in params.items() if k not in own},
    }


def _rewrite(apps, change) -> None:
    Job = apps.get_model("core", "Job")
    rows = Job.objects.filter(kind__in=OWN).only("pk", "kind", "params").order_by("pk")
    for job in rows.iterator(chunk_size=500):
        if not isinstance(job.params, dict):
            continue
        new = change(job.params, OWN[job.kind])
        if new != job.params:
            Job.objects.filter(pk=job.pk).update(params=new)  # updated_at stays: same job


def forwards(apps, schema_editor) -> None:
    _rewrite(apps, lambda params, own: flatten(params))


def backwards(apps, schema_editor) -> None:
    _rewrite(apps, nest)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
