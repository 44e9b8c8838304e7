#pragma once
// Learning-rate schedules (tlkit::schedule): torch.optim.lr_scheduler's schedules for any
// torch::optim::Optimizer, one lr per param group, with save/load and textual specs.

#include <tlkit/schedule/cosine.h>
#include <tlkit/schedule/decay.h>
#include <tlkit/schedule/lr_scheduler.h>
#include <tlkit/schedule/momentum.h>
#include <tlkit/schedule/one_cycle.h>
#include <tlkit/schedule/plateau.h>
#include <tlkit/schedule/sequential.h>
#include <tlkit/schedule/spec.h>
