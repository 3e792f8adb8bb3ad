# One federated run per (dataset, partition, run, seed): every one-stage method registered
# in dfnas.methods goes through federated_run and writes the result contract. A two-stage
# method (FedNAS) searches in fednas_search and hands its genotype, as a file, to
# fednas_train, which trains that network with FedAvg and writes the same contract.


rule federated_run:
    wildcard_constraints:
        run=alternatives(ONE_STAGE),
    input:
        data=dataset_npz,
        partition=partition_json,
        latency=latency_table,
    output:
        metrics="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/metrics.json",
        history="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/history.csv",
        model="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/model.pt",
        model_json="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/model.json",
        personalized="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/personalized.csv",
        run_config="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/config.json",
    params:
        spec=run_spec,
        device=config["device"],
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: config["threads_per_run"]
    log:
        "results/{experiment}/logs/{dataset}/{partition}/{run}/seed{seed}.log",
    benchmark:
        "results/{experiment}/benchmarks/{dataset}/{partition}/{run}/seed{seed}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas run --name {wildcards.run} --spec {params.spec:q}"
        " --data {input.data} --partition {input.partition} --seed {wildcards.seed}"
        " --device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"


rule fednas_search:
    # the longest chain of the DAG: started first, so no core idles at the end waiting on it
    priority: 10
    wildcard_constraints:
        run=alternatives(TWO_STAGE),
    input:
        data=dataset_npz,
        partition=partition_json,
    output:
        genotype="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/search/genotype.json",
        alphas="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/search/alphas.json",
        metrics="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/search/metrics.json",
        history="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/search/history.csv",
    params:
        spec=run_spec,
        device=config["device"],
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: config["threads_per_run"]
    log:
        "results/{experiment}/logs/{dataset}/{partition}/{run}/seed{seed}.search.log",
    benchmark:
        "results/{experiment}/benchmarks/{dataset}/{partition}/{run}/seed{seed}.search.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas run --name {wildcards.run} --spec {params.spec:q}"
        " --data {input.data} --partition {input.partition} --seed {wildcards.seed}"
        " --device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"


rule fednas_train:
    # the longest chain of the DAG: started first, so no core idles at the end waiting on it
    priority: 10
    wildcard_constraints:
        run=alternatives(TWO_STAGE),
    input:
        data=dataset_npz,
        partition=partition_json,
        genotype=rules.fednas_search.output.genotype,
        search=rules.fednas_search.output.metrics,
    output:
        metrics="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/metrics.json",
        history="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/history.csv",
        model="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/model.pt",
        model_json="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/model.json",
        personalized="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/personalized.csv",
        run_config="results/{experiment}/runs/{dataset}/{partition}/{run}/seed{seed}/config.json",
    params:
        spec=train_stage_spec,
        device=config["device"],
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: config["threads_per_run"]
    log:
        "results/{experiment}/logs/{dataset}/{partition}/{run}/seed{seed}.train.log",
    benchmark:
        "results/{experiment}/benchmarks/{dataset}/{partition}/{run}/seed{seed}.train.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas run --name {wildcards.run} --spec {params.spec:q}"
        " --genotype {input.genotype} --prior-stage {input.search}"
        " --data {input.data} --partition {input.partition} --seed {wildcards.seed}"
        " --device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"


rule latency_table:
    # Per-op latency of a search space's candidate blocks, measured on the machine
    # that runs this job: the table a device's latency budget is checked against.
    input:
        data=dataset_npz,
    output:
        "results/{experiment}/latency/{dataset}/{space}.json",
    params:
        model_args=space_args,
        device=config["device"],
    threads: config["threads_per_run"]
    log:
        "results/{experiment}/logs/latency/{dataset}/{space}.log",
    benchmark:
        "results/{experiment}/benchmarks/latency/{dataset}/{space}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas latency --data {input.data} --model-args {params.model_args:q}"
        " --device {params.device} --threads {threads} --out {output} > {log} 2>&1"
