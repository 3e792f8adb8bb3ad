# One federated run per (dataset, partition, run, seed): every method registered in
# dfnas.methods goes through this rule and writes the result contract.


rule federated_run:
    input:
        data=rules.dataset.output.data,
        partition=partition_json,
    output:
        metrics="results/{dataset}/{partition}/{run}/seed{seed}/metrics.json",
        history="results/{dataset}/{partition}/{run}/seed{seed}/history.csv",
        model="results/{dataset}/{partition}/{run}/seed{seed}/model.pt",
        model_json="results/{dataset}/{partition}/{run}/seed{seed}/model.json",
        personalized="results/{dataset}/{partition}/{run}/seed{seed}/personalized.csv",
        run_config="results/{dataset}/{partition}/{run}/seed{seed}/config.json",
    params:
        spec=run_spec,
        device=config["device"],
        out=lambda w, output: os.path.dirname(output.metrics),
    threads: config["threads_per_run"]
    log:
        "logs/{dataset}/{partition}/{run}/seed{seed}.log",
    benchmark:
        "results/benchmarks/{dataset}/{partition}/{run}/seed{seed}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas run --name {wildcards.run} --spec {params.spec:q}"
        " --data {input.data} --partition {input.partition} --seed {wildcards.seed}"
        " --device {params.device} --threads {threads} --out {params.out} > {log} 2>&1"
