# Datasets are read and verified once, then cached in one uniform format; partitions
# are computed once per (dataset, partition, seed) and shared by every method.


rule dataset:
    output:
        data="results/datasets/{dataset}/data.npz",
        info="results/datasets/{dataset}/info.json",
    params:
        options=dataset_options,
        data_root=config["data_root"],
    log:
        "logs/datasets/{dataset}.log",
    benchmark:
        "results/benchmarks/datasets/{dataset}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas dataset --name {wildcards.dataset} --options {params.options:q}"
        " --data-root {params.data_root:q} --out results/datasets/{wildcards.dataset}"
        " > {log} 2>&1"


rule partition:
    input:
        data=rules.dataset.output.data,
    output:
        partition="results/partitions/{dataset}/{partition}/seed{seed}/partition.json",
        counts="results/partitions/{dataset}/{partition}/seed{seed}/label_counts.csv",
        summary="results/partitions/{dataset}/{partition}/seed{seed}/summary.json",
        heatmap=report(
            "results/partitions/{dataset}/{partition}/seed{seed}/heatmap.png",
            caption="../report/partition_heatmap.rst",
            category="Partitions",
            labels={"dataset": "{dataset}", "partition": "{partition}", "seed": "{seed}"},
        ),
        checksum="results/partitions/{dataset}/{partition}/seed{seed}/checksum.sha256",
    params:
        spec=partition_spec,
    log:
        "logs/partitions/{dataset}/{partition}/seed{seed}.log",
    benchmark:
        "results/benchmarks/partitions/{dataset}/{partition}/seed{seed}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas partition --data {input.data} --spec {params.spec:q}"
        " --out results/partitions/{wildcards.dataset}/{wildcards.partition}/seed{wildcards.seed}"
        " > {log} 2>&1"
