# Datasets are read and verified once, then cached in one uniform format; partitions are
# computed once per spec. Both are shared by every method and every experiment: their
# folders are named by a digest of what shapes them (common.smk), and their logs and
# benchmarks live beside them.


rule dataset:
    output:
        data="results/datasets/{dkey}/data.npz",
        info="results/datasets/{dkey}/info.json",
    log:
        "results/datasets/{dkey}/dataset.log",
    benchmark:
        "results/datasets/{dkey}/benchmark.tsv"
    conda:
        "../../envs/dfnas.yaml"
    params:
        name=dataset_name,
        options=dataset_options,
        data_root=config["data_root"],
    shell:
        "python -m dfnas dataset --name {params.name} --options {params.options:q}"
        " --data-root {params.data_root:q} --out results/datasets/{wildcards.dkey}"
        " > {log} 2>&1"


rule partition:
    input:
        data="results/datasets/{dkey}/data.npz",
    output:
        partition="results/partitions/{dkey}/{pkey}/partition.json",
        counts="results/partitions/{dkey}/{pkey}/label_counts.csv",
        summary="results/partitions/{dkey}/{pkey}/summary.json",
        heatmap=report(
            "results/partitions/{dkey}/{pkey}/heatmap.png",
            caption="../report/partition_heatmap.rst",
            category="Partitions",
            labels={"dataset": "{dkey}", "partition": "{pkey}"},
        ),
        checksum="results/partitions/{dkey}/{pkey}/checksum.sha256",
    log:
        "results/partitions/{dkey}/{pkey}/partition.log",
    benchmark:
        "results/partitions/{dkey}/{pkey}/benchmark.tsv"
    conda:
        "../../envs/dfnas.yaml"
    params:
        spec=partition_spec,
    shell:
        "python -m dfnas partition --data {input.data} --spec {params.spec:q}"
        " --out results/partitions/{wildcards.dkey}/{wildcards.pkey}"
        " > {log} 2>&1"
