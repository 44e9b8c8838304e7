#pragma once
// tlkit::pipeline: a run's config, its builders, the training stage, selection, the two-stage
// transfer pipeline, feature extraction to disk, the exact head (logistic.h) and the plan of stage
// 1's head candidates (head_plan.h), ensembles of models (ensemble.h), the LR range test, and the
// optimizer benchmark (bench.h) with its test problems (problems.h).

#include <tlkit/pipeline/bench.h>
#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/ensemble.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/pipeline/head_plan.h>
#include <tlkit/pipeline/logistic.h>
#include <tlkit/pipeline/lr_find.h>
#include <tlkit/pipeline/problems.h>
#include <tlkit/pipeline/select.h>
#include <tlkit/pipeline/transfer.h>
