# The rules of every registered method, built from what the method declares
# (dfnas.methods.spec.MethodSpec): one rule per stage, named <method>_<stage> (fedavg_train,
# dfnas_train, fednas_search, fednas_train, ...), matching exactly that method's runs. The
# last stage writes the run's result contract in the run's folder; an earlier one writes
# into a subfolder named after it, which the next stage reads its hand-off from. Nothing
# here names a method: a new one, one stage or several, is one file under dfnas/methods.
for _method, _declared in DECLARED.items():
    _stages = _declared.stages
    for _index, _stage in enumerate(_stages):

        rule:
            name:
                f"{_method}_{_stage.name}"
            input:
                unpack(run_input_files),
                **prior_inputs(_stages, _index),
                data=dataset_npz,
                partition=partition_json,
            output:
                **{
                    file_key(f): f"{stage_dir(_stages, _index)}/{f}"
                    for f in stage_files(_declared, _index)
                },
            log:
                f"results/{{experiment}}/logs/{{dataset}}/{{partition}}/{{run}}/seed{{seed}}.{_stage.name}.log",
            benchmark:
                f"results/{{experiment}}/benchmarks/{{dataset}}/{{partition}}/{{run}}/seed{{seed}}.{_stage.name}.tsv"
            wildcard_constraints:
                run=alternatives(RUNS_OF[_method]),
            # a multi-stage method is the longest chain of the DAG: start it first, so no
            # core idles at the end waiting on it
            priority: 10 * (len(_stages) - 1)
            conda:
                "../../envs/dfnas.yaml"
            threads: config["threads_per_run"]
            resources:
                mem_mb=job_mem_mb,
                runtime=stage_runtime(_stages, _index),
                gpu=GPU,
                # how a job runs, like its threads: a resource, so changing it reruns nothing
                client_workers=config["client_workers"],
            params:
                spec=stage_params(_stages, _index),
                stage=_stage.name,
                prior=lambda w, input: (
                    f"--prior {os.path.dirname(input.prior_metrics_json)}"
                    if "prior_metrics_json" in input.keys()
                    else ""
                ),
                device=config["device"],
                inputs=input_files_arg,
                out=lambda w, output: os.path.dirname(output.metrics_json),
            shell:
                "python -m dfnas run --name {wildcards.run} --stage {params.stage} {params.prior}"
                " --spec {params.spec:q} --data {input.data} --partition {input.partition}"
                " --seed {wildcards.seed} --device {params.device} --threads {threads}"
                " --client-workers {resources.client_workers} {params.inputs}"
                " --out {params.out} > {log} 2>&1"


rule latency_table:
    # Per-op latency of a search space's candidate blocks, measured on the machine
    # that runs this job: the table a device's latency budget is checked against, made
    # as the space's method declares (dfnas.methods.spec.MethodSpec.makes).
    input:
        data=dataset_npz,
    output:
        MADE_FILES["latency_table"],
    log:
        "results/{experiment}/logs/latency/{dataset}/{space}.log",
    benchmark:
        "results/{experiment}/benchmarks/latency/{dataset}/{space}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    threads: config["threads_per_run"]
    resources:
        mem_mb=job_mem_mb,
        runtime=15,
        gpu=GPU,
    params:
        method=space_method,
        model_args=space_args,
        device=config["device"],
    shell:
        "python -m dfnas latency --method {params.method} --data {input.data}"
        " --model-args {params.model_args:q}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"
