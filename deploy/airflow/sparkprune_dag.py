"""Airflow DAG: prune a model archive from the data lake with sparkprune, once per day.

Each run writes to a path fixed by the model and the logical date, so a retried or re-run task
lands on the same output: sparkprune stages everything beside it and publishes with atomic
renames, so readers see the previous output or the new one, never a mix, and a killed attempt
leaves the previous output in place.

Trigger with other parameters (model, method, sparsity) from the UI or
`airflow dags trigger sparkprune_daily --conf '{"model_uri": "hdfs:///models/mistral-7b"}'`.
Airflow Variables: sparkprune_jar (the shaded jar's URI), sparkprune_conf_dir (a copy of conf/).
Needs apache-airflow-providers-apache-spark and a Spark connection (default: spark_default)
whose host is the master: yarn, k8s://https://..., or spark://...
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
OUTPUT = (
    "{{ params.out_root }}/{{ params.model_uri.rstrip('/').split('/')[-1] }}"
    "/{{ ds_nodash }}/{{ params.method }}-{{ params.sparsity }}"
)

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
    params={
        "model_uri": Param("hdfs:///lake/models/llama-2-7b", type="string"),
        "out_root": Param("hdfs:///lake/pruned", type="string"),
        "calib_uri": Param("hdfs:///lake/text/c4-calibration.parquet", type="string"),
        "method": Param("wanda", enum=["magnitude", "wanda", "sparsegpt", "ria"]),
        "sparsity": Param("0.5", type="string"),
        "nsamples": Param(128, type="integer", minimum=1),
        "seed": Param(0, type="integer", minimum=0),
        "gpus_per_task": Param("0", type="string"),
    },
    tags=["sparkprune", "pruning"],
) as dag:
    prune = SparkSubmitOperator(
        task_id="prune",
        conn_id="spark_default",
        application="{{ var.value.sparkprune_jar }}",
        java_class="dev.sparkprune.jobs.cli.Main",
        name="sparkprune-{{ dag.dag_id }}-{{ ds_nodash }}",
        properties_file="{{ var.value.sparkprune_conf_dir }}/spark-defaults.conf",
        files="{{ var.value.sparkprune_conf_dir }}/log4j2.properties",
        conf={
            "spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=log4j2.properties",
            "spark.executor.extraJavaOptions": "-Dlog4j2.configurationFile=log4j2.properties",
        },
        application_args=[
            "prune",
            "--model", "{{ params.model_uri }}",
            "--out", OUTPUT,
            "--method", "{{ params.method }}",
            "--sparsity", "{{ params.sparsity }}",
            "--calib", "{{ params.calib_uri }}",
            "--nsamples", "{{ params.nsamples }}",
            # A fixed seed: a retry or re-run samples the same calibration windows, so gives the same bytes.
            "--seed", "{{ params.seed }}",
            "--gpus-per-task", "{{ params.gpus_per_task }}",
        ],
        verbose=False,
    )
