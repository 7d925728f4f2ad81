"""``sentsim eval TASK``: evaluate a model on STS, pair classification, retrieval, triplets or classification."""

from __future__ import annotations

import argparse

from sentsim.cli.common import (
    add_fine_tune_options,
    add_label_options,
    add_model_options,
    add_output_options,
    add_precision_options,
    add_weight_option,
    check_split_used,
    emit,
    few_shot_classifier,
    load_encoder,
    precision_options,
    progress,
    read_scored_pairs,
    read_texts_with_labels,
    refuse_named,
    weights,
)
from sentsim.data import read_beir, read_pairs, read_triplets, sts_pair_classification, sts_paraphrase_retrieval
from sentsim.evaluation import (
    IndexSearch,
    evaluate_classifier,
    evaluate_pairs,
    evaluate_retrieval,
    evaluate_sts,
    evaluate_triplets,
)
from sentsim.search.hybrid import MODES
from sentsim.search.keywords import TOKENIZERS

DATA_HELP = (
    "a data file (csv, tsv, json, jsonl, parquet), a saved dataset folder, a Hub dataset, or a named set (stsb:test)"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", aliases=["evaluate"], help="evaluate a model", description=__doc__)
    tasks = parser.add_subparsers(dest="task", required=True, metavar="TASK")

    sts = _task(
        tasks,
        "sts",
        run_sts,
        "Spearman/Pearson x 100 of similarity (cosine, dot, euclidean, manhattan) against gold scores.",
    )
    sts.add_argument("--data", required=True, help="headerless sentence1,sentence2,score CSV, or " + DATA_HELP)

    pairs = _task(
        tasks,
        "pairs",
        run_pairs,
        "Pair classification: accuracy, precision, recall, F1 and average precision of similarity >= threshold.",
    )
    pairs.add_argument(
        "--data", required=True, help="sentence1,sentence2,label pairs (with --from-sts: scored pairs); " + DATA_HELP
    )
    pairs.add_argument(
        "--threshold", type=float, help="apply this threshold (default: the best one on --tune-data, else on --data)"
    )
    pairs.add_argument("--tune-data", help="tune the threshold on these pairs (e.g. dev) and apply it to --data")
    pairs.add_argument(
        "--objective", choices=["accuracy", "f1"], default="accuracy", help="what the tuned threshold maximizes"
    )
    pairs.add_argument("--metric", default="cosine", choices=["cosine", "dot", "euclidean", "manhattan"])
    pairs.add_argument(
        "--from-sts",
        action="store_true",
        help="derive labels from scores: similar >= --positive-min, dissimilar <= --negative-max",
    )
    pairs.add_argument("--positive-min", type=float, default=4.0)
    pairs.add_argument("--negative-max", type=float, default=1.0)

    retrieval = _task(
        tasks,
        "retrieval",
        run_retrieval,
        "Retrieval: MRR@10, nDCG@10, Recall@1/5/10/100, MAP@100 with exact search, or through an index (--mode).",
    )
    retrieval.add_argument("--data", help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)")
    retrieval.add_argument(
        "--sts", help="paraphrase retrieval from scored pairs: queries = sentence1 of pairs >= --min-score"
    )
    retrieval.add_argument(
        "--corpus", nargs="*", default=[], help="with --sts: more scored-pair sources whose sentences join the corpus"
    )
    retrieval.add_argument("--min-score", type=float, default=4.0)
    retrieval.add_argument("--metric", default="cosine", choices=["cosine", "dot", "euclidean", "manhattan"])
    retrieval.add_argument(
        "--mode",
        choices=list(MODES),
        help="search through a DocumentIndex of the corpus in this mode (dense, keyword, hybrid) instead of "
        "exact search; the index options below imply it (as dense)",
    )
    retrieval.add_argument("--backend", default=None, help="the index's FAISS backend (default flat: exact)")
    retrieval.add_argument("--keyword-tokenizer", choices=list(TOKENIZERS), help="the keyword index's tokenizer")
    add_weight_option(retrieval)
    add_precision_options(retrieval)

    triplets = _task(
        tasks, "triplets", run_triplets, "Triplets: accuracy of sim(anchor, positive) > sim(anchor, negative)."
    )
    triplets.add_argument("--data", required=True, help="anchor,positive,negative rows; " + DATA_HELP)

    classify = _task(
        tasks,
        "classify",
        run_classify,
        "Few-shot or zero-shot classification: accuracy and macro-F1, with optional out-of-scope detection; "
        "micro/macro-F1 and subset accuracy with --multi-label.",
    )
    classify.add_argument(
        "--support", help="labelled examples (text,label), or a named set such as clinc150:train; zero-shot: none"
    )
    classify.add_argument("--data", required=True, help="labelled test texts, or a named set such as clinc150:test")
    classify.add_argument("--shots", type=int, help="sample this many support examples per class")
    classify.add_argument("--seed", type=int, default=0, help="seed of the --shots sample (default 0)")
    classify.add_argument("--strategy", choices=["prototype", "knn", "logistic"], default="prototype")
    classify.add_argument("--k", type=int, help="neighbours per class for --strategy knn (default 3)")
    classify.add_argument(
        "--out-of-scope", action="append", default=[], help="texts that belong to no class (e.g. clinc150:oos_test)"
    )
    classify.add_argument(
        "--threshold", type=float, help="answer 'none' below this score (a probability with --strategy logistic)"
    )
    classify.add_argument(
        "--unknown-label", default="none", help="the answer below --threshold (default: none); no class may use it"
    )
    classify.add_argument(
        "--tune-data", action="append", default=[], help="tune the threshold on these labelled texts ..."
    )
    classify.add_argument(
        "--tune-out-of-scope",
        action="append",
        default=[],
        help="... and these out-of-scope texts (e.g. clinc150:val, clinc150:oos_val); "
        "with --multi-label, --tune-data alone tunes a threshold per class",
    )
    add_label_options(classify)
    add_fine_tune_options(classify)


def _task(tasks: argparse._SubParsersAction, name: str, run, description: str) -> argparse.ArgumentParser:
    parser = tasks.add_parser(name, help=description.split(":")[0], description=description)
    parser.add_argument(
        "--split", default=None, help="split of the Hub datasets and saved DatasetDicts read (default: test)"
    )
    add_output_options(parser)
    add_model_options(parser, truncate=True)
    parser.set_defaults(run=run)
    return parser


def run_sts(args: argparse.Namespace) -> int:
    check_split_used(args.split, [args.data])
    pairs = read_scored_pairs(args.data, args, args.split)
    results = evaluate_sts(load_encoder(args), pairs, batch_size=args.batch_size, show_progress=progress(args))
    emit(
        results,
        args,
        f"n={results['n']}  spearman={results['spearman']:.2f}  pearson={results['pearson']:.2f}  (cosine, x100)",
    )
    return 0


def run_pairs(args: argparse.Namespace) -> int:
    def read(source):
        if args.from_sts:
            return sts_pair_classification(
                read_scored_pairs(source, args, args.split),
                positive_min=args.positive_min,
                negative_max=args.negative_max,
            )
        refuse_named(source, "labelled pairs", " (add --from-sts to label scored pairs by their score)")
        return read_pairs(source, split=args.split)

    check_split_used(args.split, [args.data, args.tune_data])
    _one_threshold(args)
    encoder = load_encoder(args)
    options = {
        "metric": args.metric,
        "objective": args.objective,
        "batch_size": args.batch_size,
        "show_progress": progress(args),
    }
    threshold = args.threshold
    if threshold is None and args.tune_data:
        threshold = evaluate_pairs(encoder, read(args.tune_data), **options)["threshold"]
    results = evaluate_pairs(encoder, read(args.data), threshold=threshold, **options)
    emit(
        results,
        args,
        f"n={results['n']}  accuracy={results['accuracy']:.2f}  f1={results['f1']:.2f}  "
        f"ap={results['average_precision']:.2f}  threshold={results['threshold']:.4f}",
    )
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    if (args.data is None) == (args.sts is None):
        raise ValueError("give either --data BEIR_FOLDER or --sts SCORED_PAIRS")
    check_split_used(args.split, [args.data, args.sts, *args.corpus])
    if args.data is not None:
        refuse_named(args.data, "a BEIR folder", " (--sts derives retrieval from scored pairs)")
        data = read_beir(args.data, split=args.split or "test")
    else:
        corpus = [read_scored_pairs(source, args, args.split) for source in args.corpus]
        data = sts_paraphrase_retrieval(read_scored_pairs(args.sts, args, args.split), corpus, min_score=args.min_score)
    results = evaluate_retrieval(
        load_encoder(args),
        data,
        metric=args.metric,
        batch_size=args.batch_size,
        device=args.device,
        show_progress=progress(args),
        index=_index_search(args),
    )
    emit(
        results,
        args,
        f"queries={results['queries']}  corpus={results['corpus']}  search={results['search']}  "
        f"mrr@10={results['mrr@10']:.2f}  ndcg@10={results['ndcg@10']:.2f}  recall@10={results['recall@10']:.2f}",
    )
    return 0


def _index_search(args: argparse.Namespace) -> IndexSearch | None:
    """How ``eval retrieval`` searches: exact (None) unless --mode asks for a DocumentIndex; the
    index layout options imply ``--mode dense``, the keyword options need a --mode."""
    if args.mode is None:
        keyword = [
            flag
            for flag, value in (("--keyword-tokenizer", args.keyword_tokenizer), ("--weight", args.weight))
            if value
        ]
        if keyword:
            raise ValueError(f"{', '.join(keyword)} applies to a search through an index: add --mode keyword|hybrid")
    options = {"backend": args.backend, "keyword_tokenizer": args.keyword_tokenizer} | precision_options(args)
    options = {name: value for name, value in options.items() if value is not None}
    if args.mode is None and not options:
        return None
    return IndexSearch(mode=args.mode or "dense", weights=weights(args.weight), **options)


def run_triplets(args: argparse.Namespace) -> int:
    check_split_used(args.split, [args.data])
    refuse_named(args.data, "anchor,positive,negative triplets")
    results = evaluate_triplets(
        load_encoder(args),
        read_triplets(args.data, split=args.split),
        batch_size=args.batch_size,
        show_progress=progress(args),
    )
    emit(results, args, f"n={results['n']}  accuracy={results['accuracy']:.2f}  (cosine)")
    return 0


def run_classify(args: argparse.Namespace) -> int:
    if args.multi_label:
        _check_multi_label(args)
    elif bool(args.tune_data) != bool(args.tune_out_of_scope):
        raise ValueError(
            "--tune-data (labelled in-scope texts) and --tune-out-of-scope (texts that belong to no class) "
            "tune the threshold together; give both"
        )
    _one_threshold(args)
    if args.shots is not None and args.support is None:
        raise ValueError("--shots samples the --support examples; zero-shot has none")
    sources = [args.support, args.data, *args.tune_data, *args.tune_out_of_scope, *args.out_of_scope]
    check_split_used(args.split, sources)
    support = read_texts_with_labels(args.support, args, args.split) if args.support else None
    if args.shots is not None:
        support = support.sample_per_class(args.shots, args.seed)
    test = read_texts_with_labels(args.data, args, args.split)
    classifier = few_shot_classifier(args, support)
    if args.multi_label and args.tune_data:
        tune = [read_texts_with_labels(source, args, args.split) for source in args.tune_data]
        classifier.fit_class_thresholds(
            [text for part in tune for text in part.texts], [labels for part in tune for labels in part.labels]
        )
    elif args.tune_data or args.tune_out_of_scope:
        tune = [read_texts_with_labels(source, args, args.split) for source in args.tune_data]
        outside = [
            text for source in args.tune_out_of_scope for text in read_texts_with_labels(source, args, args.split).texts
        ]
        texts = [text for part in tune for text in part.texts] + outside
        labels = [label for part in tune for label in part.labels] + [classifier.unknown_label] * len(outside)
        classifier.fit_threshold(texts, labels)
    out_of_scope = [
        text for source in args.out_of_scope for text in read_texts_with_labels(source, args, args.split).texts
    ]
    results = evaluate_classifier(classifier, test.texts, test.labels, out_of_scope=out_of_scope)
    results |= {"classes": len(classifier.classes), "support": len(support) if support else 0}
    if args.multi_label:
        results["thresholds"] = classifier.class_thresholds or classifier.threshold
        emit(
            results,
            args,
            f"n={results['n']}  micro_f1={results['micro_f1']:.2f}  macro_f1={results['macro_f1']:.2f}  "
            f"subset_accuracy={results['subset_accuracy']:.2f}",
        )
        return 0
    results["threshold"] = classifier.threshold
    summary = f"n={results['n']}  accuracy={results['accuracy']:.2f}  macro_f1={results['macro_f1']:.2f}"
    if out_of_scope:
        summary += f"  oos_recall={results['oos_recall']:.2f}"
    emit(results, args, summary)
    return 0


def _check_multi_label(args: argparse.Namespace) -> None:
    """Multi-label: a threshold per class (from --tune-data) or one for all; no out-of-scope texts or --shots."""
    if args.out_of_scope or args.tune_out_of_scope:
        raise ValueError(
            "--multi-label answers an empty label set for texts of no class: put them in --data / --tune-data "
            "with an empty label list instead of --out-of-scope / --tune-out-of-scope"
        )
    if args.shots is not None:
        raise ValueError("--shots samples per class from single-label data; --multi-label takes --support as it is")
    if args.threshold is None and not args.tune_data:
        raise ValueError("--multi-label needs --tune-data (a threshold per class) or --threshold (one for all)")


def _one_threshold(args: argparse.Namespace) -> None:
    """A given --threshold and one tuned on --tune-data cannot both apply."""
    if args.threshold is not None and args.tune_data:
        raise ValueError("give --threshold or --tune-data (which tunes the threshold), not both")
