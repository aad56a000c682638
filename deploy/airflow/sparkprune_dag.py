"""Airflow DAG: prune a model archive from the data lake with sparkprune, once per day.

Each run writes to a path fixed by the model and the logical date, so a retried or re-run task
lands on the same output: sparkprune stages everything beside it and publishes with atomic
renames, so readers see the previous output or the new one, never a mix, and a killed attempt
leaves the previous output in place.

Trigger with other parameters (model, method, sparsity) from the UI or
`airflow dags trigger sparkprune_daily --conf '{"model_uri": "hdfs:///models/mistral-7b"}'`.
Airflow Variables: sparkprune_jar (the shaded jar's URI), sparkprune_conf_dir (a copy of conf/:
its spark-defaults.conf carries the driver's Java module options and the site's
spark.sparkprune.* settings). Needs apache-airflow-providers-apache-spark and a Spark connection
(default: spark_default) whose host is the master: yarn, k8s://https://..., or spark://...

Tuning settings (nsamples, seqlen, gpus_per_task) are passed only when a run's params set them:
otherwise the site's spark.sparkprune.<key> in spark-defaults.conf applies, then sparkprune's
default. The seed is always passed: a retry must sample the same calibration windows.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.x
    from airflow import DAG
    from airflow.models.param import Param

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

# Where a model's outputs go: one folder per model, logical date and settings, never two runs'.
def output_path(params, ds_nodash):
    model = params["model_uri"].rstrip("/").split("/")[-1]
    return f"{params['out_root'].rstrip('/')}/{model}/{ds_nodash}/{params['method']}-{params['sparsity']}"


# Params that are sparkprune settings a site may also set as spark.sparkprune.<key>: passed only when set.
TUNING = {"nsamples": "--nsamples", "seqlen": "--seqlen", "gpus_per_task": "--gpus-per-task"}


def prune_args(params, ds_nodash):
    """The prune command line of one run (a list: the DAG renders templates as native objects)."""
    args = [
        "prune",
        "--model", params["model_uri"],
        "--out", output_path(params, ds_nodash),
        "--method", params["method"],
        "--sparsity", str(params["sparsity"]),
        # A fixed seed: a retry or re-run samples the same calibration windows, so gives the same bytes.
        "--seed", str(params["seed"]),
    ]
    if params.get("calib_uri"):
        args += ["--calib", params["calib_uri"]]
    for param, option in TUNING.items():
        if params.get(param) not in (None, ""):
            args += [option, str(params[param])]
    return args


default_args = {
    "owner": "ml-platform",
    # Transient cluster trouble is retried; bad input fails fast (sparkprune exits 2, one line).
    "retries": 3,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=12),
}

with DAG(
    dag_id="sparkprune_daily",
    description="Prune a model archive with sparkprune on Spark",
    schedule="0 3 * * *",
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    # application_args renders to the list prune_args builds, so unset tuning params add no option.
    render_template_as_native_obj=True,
    user_defined_macros={"prune_args": prune_args},
    params={
        "model_uri": Param("hdfs:///lake/models/llama-2-7b", type="string"),
        "out_root": Param("hdfs:///lake/pruned", type="string"),
        "calib_uri": Param("hdfs:///lake/text/c4-calibration.parquet", type="string"),
        "method": Param("wanda", enum=["magnitude", "wanda", "sparsegpt", "ria"]),
        "sparsity": Param("0.5", type="string"),
        "seed": Param(0, type="integer", minimum=0),
        # None: the site's spark.sparkprune.<key>, else sparkprune's default (seqlen 2048: set it
        # for models with a shorter context).
        "nsamples": Param(None, type=["null", "integer"], minimum=1),
        "seqlen": Param(None, type=["null", "integer"], minimum=1),
        "gpus_per_task": Param(None, type=["null", "string"]),
    },
    tags=["sparkprune", "pruning"],
) as dag:
    prune = SparkSubmitOperator(
        task_id="prune",
        conn_id="spark_default",
        # Client mode: the driver runs in this task, so the task's log holds the job's progress and
        # one-line errors, and its exit code is the job's (2 for bad input), on any cluster manager.
        # Cluster mode works too (spark-defaults.conf gives a standalone worker's driver the Java
        # module options; the provider then polls a standalone master's REST port, 6066).
        deploy_mode="client",
        application="{{ var.value.sparkprune_jar }}",
        java_class="dev.sparkprune.jobs.cli.Main",
        name="sparkprune-{{ dag.dag_id }}-{{ ds_nodash }}",
        properties_file="{{ var.value.sparkprune_conf_dir }}/spark-defaults.conf",
        application_args="{{ prune_args(params, ds_nodash) }}",
        verbose=False,
    )
