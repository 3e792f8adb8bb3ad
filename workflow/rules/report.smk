# Tables and figures from every run that follows the result contract (registered methods
# and external runs alike), captioned for `snakemake --report report.html`.


rule collect:
    input:
        run_targets(),
    output:
        csv=report(
            "results/tables/comparison.csv",
            caption="../report/comparison.rst",
            category="Tables",
        ),
        md="results/tables/comparison.md",
        tex="results/tables/comparison.tex",
    params:
        reference=lambda w: f"--reference {config['reference']}" if config["reference"] else "",
    log:
        "logs/tables/collect.log",
    benchmark:
        "results/benchmarks/tables/collect.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas collect {input} {params.reference} --out-dir results/tables > {log} 2>&1"


rule figures:
    input:
        metrics=run_targets(),
        table=rules.collect.output.csv,
    output:
        curves=report(
            "results/figures/accuracy_per_round.png",
            caption="../report/accuracy_per_round.rst",
            category="Figures",
        ),
        efficiency=report(
            "results/figures/accuracy_vs_compute.png",
            caption="../report/accuracy_vs_compute.rst",
            category="Figures",
        ),
        resources=report(
            "results/figures/resources.png",
            caption="../report/resources.rst",
            category="Figures",
        ),
        personalized=report(
            "results/figures/personalized.png",
            caption="../report/personalized.rst",
            category="Figures",
        ),
        pdfs=expand("results/figures/{figure}.pdf", figure=FIGURES),
    log:
        "logs/figures/figures.log",
    benchmark:
        "results/benchmarks/figures/figures.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas figures {input.metrics} --table {input.table}"
        " --out-dir results/figures > {log} 2>&1"


rule architecture_figure:
    # architecture.json is written beside metrics.json, before it: metrics.json marks
    # the run complete, so it is the input that orders this job after the run
    input:
        metrics="results/{dataset}/{partition}/{run}/seed{seed}/metrics.json",
    output:
        png=report(
            "results/figures/architecture/{dataset}/{partition}/{run}/seed{seed}.png",
            caption="../report/architecture.rst",
            category="DFNAS architecture",
            labels={"setting": "{dataset} / {partition}", "run": "{run}", "seed": "{seed}"},
        ),
        pdf="results/figures/architecture/{dataset}/{partition}/{run}/seed{seed}.pdf",
    params:
        arch=lambda w, input: os.path.join(os.path.dirname(input.metrics), "architecture.json"),
        stem=lambda w, output: output.png.removesuffix(".png"),
    log:
        "logs/figures/architecture/{dataset}/{partition}/{run}/seed{seed}.log",
    benchmark:
        "results/benchmarks/figures/architecture/{dataset}/{partition}/{run}/seed{seed}.tsv"
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas architecture-figure --architecture {params.arch}"
        " --out {params.stem} > {log} 2>&1"
