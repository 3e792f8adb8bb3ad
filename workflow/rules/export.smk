# A run's final network as a portable artifact (ONNX), checked by onnxruntime against the
# trained model on the test split and timed there (dfnas.deploy.export). On by default for
# the NAS methods' runs (config key export); the tables read export/export.json.


rule export:
    input:
        metrics=f"{RUN_DIR}/metrics.json",
        data=dataset_npz,
    output:
        onnx=f"{RUN_DIR}/export/model.onnx",
        report=f"{RUN_DIR}/export/export.json",
    log:
        "results/{experiment}/logs/{dataset}/{partition}/{run}/seed{seed}.export.log",
    benchmark:
        "results/{experiment}/benchmarks/{dataset}/{partition}/{run}/seed{seed}.export.tsv"
    wildcard_constraints:
        run=alternatives(EXPORTED),
    conda:
        "../../envs/dfnas.yaml"
    threads: config["threads_per_run"]
    resources:
        mem_mb=job_mem_mb,
        runtime=15,
    params:
        run_dir=lambda w, input: os.path.dirname(input.metrics),
    shell:
        "python -m dfnas export --run-dir {params.run_dir} --data {input.data}"
        " --threads {threads} --out {output.report} > {log} 2>&1"
