#pragma once
// tlkit::pipeline: a run's config, its builders, the training stage, selection, the two-stage
// transfer pipeline, feature extraction to disk and the LR range test.

#include <tlkit/pipeline/build.h>
#include <tlkit/pipeline/config.h>
#include <tlkit/pipeline/extract.h>
#include <tlkit/pipeline/fit.h>
#include <tlkit/pipeline/lr_find.h>
#include <tlkit/pipeline/select.h>
#include <tlkit/pipeline/transfer.h>
