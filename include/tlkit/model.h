#pragma once
// tlkit::model: the TorchScript classifier (layers, head, freezing, per-layer learning rates),
// export for Python and as ONNX.

#include <tlkit/model/classifier.h>
#include <tlkit/model/export.h>
#include <tlkit/model/file_hash.h>
#include <tlkit/model/import.h>
#include <tlkit/model/onnx_export.h>
#include <tlkit/model/param_groups.h>
#include <tlkit/model/script_checks.h>
#include <tlkit/model/weights_file.h>
