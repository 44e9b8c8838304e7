#pragma once
// Everything in tlkit: optimizers, schedules, data, models, training, the pipeline.

#include <tlkit/data.h>
#include <tlkit/model.h>
#include <tlkit/optim.h>
#include <tlkit/pipeline.h>
#include <tlkit/schedule.h>
#include <tlkit/train/callbacks.h>
#include <tlkit/train/classification_report.h>
#include <tlkit/train/ema_callback.h>
#include <tlkit/train/trainer.h>
