# Tables and figures from every run that follows the result contract (registered methods
# and external runs alike), captioned for `snakemake --report report.html`. They take
# seconds and read only small files: on a cluster they run where Snakemake runs
# (localrule), not queued as jobs of their own.


rule collect:
    input:
        metrics=run_targets(),
        exports=export_targets(),
    output:
        csv=report(
            "results/{experiment}/tables/comparison.csv",
            caption="../report/comparison.rst",
            category="Tables",
        ),
        md="results/{experiment}/tables/comparison.md",
        tex="results/{experiment}/tables/comparison.tex",
    log:
        "results/{experiment}/logs/tables/collect.log",
    benchmark:
        "results/{experiment}/benchmarks/tables/collect.tsv"
    localrule: True
    conda:
        "../../envs/dfnas.yaml"
    params:
        # a run's name, checked at start; a list, so :q quotes each word (or writes nothing)
        reference=["--reference", config["reference"]] if config["reference"] else [],
        arch_groups=json.dumps(config["arch_groups"], sort_keys=True),
        target=lambda w: (
            f"--target-fraction {config['target_fraction']}"
            + (
                f" --target-accuracy {config['target_accuracy']}"
                if config["target_accuracy"]
                else ""
            )
        ),
    shell:
        "python -m dfnas collect {input.metrics} {params.reference:q} {params.target}"
        " --arch-groups {params.arch_groups:q}"
        " --out-dir results/{wildcards.experiment}/tables > {log} 2>&1"


rule verdict:
    input:
        run_targets(),
    output:
        csv=report(
            "results/{experiment}/tables/verdict.csv",
            caption="../report/verdict.rst",
            category="Tables",
        ),
        md="results/{experiment}/tables/verdict.md",
        png=report(
            "results/{experiment}/figures/verdict.png",
            caption="../report/verdict.rst",
            category="Figures",
        ),
        pdf="results/{experiment}/figures/verdict.pdf",
    log:
        "results/{experiment}/logs/tables/verdict.log",
    benchmark:
        "results/{experiment}/benchmarks/tables/verdict.tsv"
    localrule: True
    conda:
        "../../envs/dfnas.yaml"
    params:
        spec=json.dumps(config["verdict"] or {}, sort_keys=True),
        arch_groups=json.dumps(config["arch_groups"], sort_keys=True),
        stem=lambda w, output: output.png.removesuffix(".png"),
    shell:
        "python -m dfnas verdict {input} --spec {params.spec:q}"
        " --arch-groups {params.arch_groups:q} --csv {output.csv} --md {output.md}"
        " --figure {params.stem} > {log} 2>&1"


rule figures:
    input:
        metrics=run_targets(),
        table=rules.collect.output.csv,
    output:
        # every comparison figure dfnas.report.FIGURES names, its caption named after it
        **{
            figure: report(
                f"results/{{experiment}}/figures/{figure}.png",
                caption=f"../report/{figure}.rst",
                category="Figures",
            )
            for figure in FIGURES
        },
        pdfs=expand("results/{{experiment}}/figures/{figure}.pdf", figure=FIGURES),
    log:
        "results/{experiment}/logs/figures/figures.log",
    benchmark:
        "results/{experiment}/benchmarks/figures/figures.tsv"
    localrule: True
    conda:
        "../../envs/dfnas.yaml"
    shell:
        "python -m dfnas figures {input.metrics} --table {input.table}"
        " --out-dir results/{wildcards.experiment}/figures > {log} 2>&1"


# Per-run figures a method declares (dfnas.methods.stages.RunFigure, in its MethodSpec), drawn from a file
# its run writes beside metrics.json, before it: metrics.json marks the run complete, so it
# is the input that orders the figure after the run.
for _method, _declared in DECLARED.items():
    for _figure in _declared.figures:

        rule:
            name:
                f"{_method}_{_figure.name}_figure"
            input:
                metrics=f"{RUN_DIR}/metrics.json",
            output:
                png=report(
                    f"results/{{experiment}}/figures/{_figure.name}/{{dataset}}/{{partition}}/{{run}}/seed{{seed}}.png",
                    caption=f"../report/{_figure.caption}",
                    category=f"{_method}: {_figure.name}",
                    labels={
                        "setting": "{dataset} / {partition}",
                        "run": "{run}",
                        "seed": "{seed}",
                    },
                ),
                pdf=f"results/{{experiment}}/figures/{_figure.name}/{{dataset}}/{{partition}}/{{run}}/seed{{seed}}.pdf",
            log:
                f"results/{{experiment}}/logs/figures/{_figure.name}/{{dataset}}/{{partition}}/{{run}}/seed{{seed}}.log",
            benchmark:
                f"results/{{experiment}}/benchmarks/figures/{_figure.name}/{{dataset}}/{{partition}}/{{run}}/seed{{seed}}.tsv"
            wildcard_constraints:
                run=alternatives(RUNS_OF[_method]),
            localrule: True
            conda:
                "../../envs/dfnas.yaml"
            params:
                method=_method,
                figure=_figure.name,
                source=lambda w, input, _source=_figure.source: os.path.join(
                    os.path.dirname(input.metrics), _source
                ),
                stem=lambda w, output: output.png.removesuffix(".png"),
            shell:
                "python -m dfnas run-figure --method {params.method} --figure {params.figure}"
                " --source {params.source} --out {params.stem} > {log} 2>&1"
