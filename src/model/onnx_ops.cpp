// The op table of export_onnx: one converter per aten op, each emitting the ONNX operators
// (opset 13) that compute what the op computes in eval mode. Arguments other than tensors are
// read from their evaluated values; where ONNX and LibTorch could disagree on an output shape
// (pooling with ceil_mode), the shape LibTorch produced on the example batch is checked.

#include <functional>
#include <map>

#include <ATen/ATen.h>

#include "onnx_builder.h"

namespace tlkit::model::onnx {
namespace {

using torch::jit::Node;
using torch::jit::Value;
using Ints = std::vector<std::int64_t>;
using Converter = std::function<void(GraphBuilder&, const Node*)>;

std::string hint(const Node* node) { return node->output(0)->debugName(); }

Ints int_list(GraphBuilder& b, const Value* v) {
  const auto& iv = b.value(v);
  if (iv.isInt()) return {iv.toInt()};
  return iv.toIntVector();
}

// A 2-D argument given as one value or two.
Ints pair(GraphBuilder& b, const Node* n, const Value* v, const char* what) {
  auto values = int_list(b, v);
  if (values.size() == 1) values.push_back(values[0]);
  if (values.size() != 2)
    b.refuse(n, std::string(what) + " has " + std::to_string(values.size()) + " values, not 2");
  return values;
}

bool is_none(GraphBuilder& b, const Value* v) { return b.value(v).isNone(); }

double number(GraphBuilder& b, const Value* v) { return b.value(v).toScalar().toDouble(); }

// [top, left, bottom, right] in ONNX's order (begin values, then end values).
Ints symmetric_pads(const Ints& p) { return {p[0], p[1], p[0], p[1]}; }

void check_spatial(GraphBuilder& b, const Node* n, const Ints& onnx_hw) {
  const auto out = b.shape(n->output(0));
  if (out.size() != 4 || out[2] != onnx_hw[0] || out[3] != onnx_hw[1])
    b.refuse(n, "ONNX would give " + std::to_string(onnx_hw[0]) + "x" + std::to_string(onnx_hw[1]) +
                    " outputs where LibTorch gives " +
                    std::to_string(out.size() == 4 ? out[2] : -1) + "x" +
                    std::to_string(out.size() == 4 ? out[3] : -1));
}

// ONNX's pooled size: floor or ceil of (in + pads - dilated kernel) / stride, plus one.
std::int64_t pooled(std::int64_t in, std::int64_t pad, std::int64_t kernel, std::int64_t stride,
                    std::int64_t dilation, bool ceil_mode) {
  const auto span = in + 2 * pad - ((kernel - 1) * dilation + 1);
  return (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
}

void require_4d(GraphBuilder& b, const Node* n) {
  if (b.shape(n->input(0)).size() != 4) b.refuse(n, "only 4-D (N, C, H, W) inputs are supported");
}

// conv2d(input, weight, bias, stride, padding, dilation, groups) and
// _convolution / convolution(input, weight, bias, stride, padding, dilation, transposed,
// output_padding, groups, ...).
void convolution(GraphBuilder& b, const Node* n) {
  const bool conv2d = n->kind() == c10::aten::conv2d;
  if (!conv2d && b.value(n->input(6)).toBool()) b.refuse(n, "transposed convolution");
  const auto groups = b.value(n->input(conv2d ? 6 : 8)).toInt();
  const auto weight = b.shape(n->input(1));
  if (weight.size() != 4) b.refuse(n, "only 2-D convolutions (4-D weights) are supported");
  const Ints kernel{weight[2], weight[3]};
  const auto stride = pair(b, n, n->input(3), "stride");
  const auto dilation = pair(b, n, n->input(5), "dilation");
  Ints pads;
  if (b.value(n->input(4)).isString()) {  // conv2d(..., padding="same" | "valid")
    pads = {0, 0, 0, 0};
    if (b.value(n->input(4)).toStringRef() == "same") {
      for (int i = 0; i < 2; ++i) {
        const auto total = dilation[i] * (kernel[i] - 1);
        pads[i] = total / 2;
        pads[i + 2] = total - total / 2;
      }
    }
  } else {
    pads = symmetric_pads(pair(b, n, n->input(4), "padding"));
  }
  std::vector<std::string> inputs{b.name(n->input(0)), b.name(n->input(1))};
  if (!is_none(b, n->input(2))) inputs.push_back(b.name(n->input(2)));
  b.bind(n->output(0),
         b.emit("Conv", inputs, hint(n),
                {attribute_ints("kernel_shape", kernel), attribute_ints("strides", stride),
                 attribute_ints("pads", pads), attribute_ints("dilations", dilation),
                 attribute_int("group", groups)}));
}

// max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)
void max_pool(GraphBuilder& b, const Node* n) {
  require_4d(b, n);
  const auto kernel = pair(b, n, n->input(1), "kernel_size");
  const auto stride = int_list(b, n->input(2)).empty() ? kernel : pair(b, n, n->input(2), "stride");
  const auto padding = pair(b, n, n->input(3), "padding");
  const auto dilation = pair(b, n, n->input(4), "dilation");
  const bool ceil_mode = b.value(n->input(5)).toBool();
  const auto in = b.shape(n->input(0));
  check_spatial(b, n,
                {pooled(in[2], padding[0], kernel[0], stride[0], dilation[0], ceil_mode),
                 pooled(in[3], padding[1], kernel[1], stride[1], dilation[1], ceil_mode)});
  std::vector<Message> attributes{
      attribute_ints("kernel_shape", kernel), attribute_ints("strides", stride),
      attribute_ints("pads", symmetric_pads(padding)), attribute_int("ceil_mode", ceil_mode)};
  if (dilation != Ints{1, 1}) attributes.push_back(attribute_ints("dilations", dilation));
  b.bind(n->output(0), b.emit("MaxPool", {b.name(n->input(0))}, hint(n), attributes));
}

// avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
void avg_pool(GraphBuilder& b, const Node* n) {
  require_4d(b, n);
  if (!is_none(b, n->input(6))) b.refuse(n, "divisor_override is not supported");
  const auto kernel = pair(b, n, n->input(1), "kernel_size");
  const auto stride = int_list(b, n->input(2)).empty() ? kernel : pair(b, n, n->input(2), "stride");
  const auto padding = pair(b, n, n->input(3), "padding");
  const bool ceil_mode = b.value(n->input(4)).toBool();
  const bool include_pad = b.value(n->input(5)).toBool();
  const auto in = b.shape(n->input(0));
  check_spatial(b, n,
                {pooled(in[2], padding[0], kernel[0], stride[0], 1, ceil_mode),
                 pooled(in[3], padding[1], kernel[1], stride[1], 1, ceil_mode)});
  b.bind(n->output(0),
         b.emit("AveragePool", {b.name(n->input(0))}, hint(n),
                {attribute_ints("kernel_shape", kernel), attribute_ints("strides", stride),
                 attribute_ints("pads", symmetric_pads(padding)),
                 attribute_int("ceil_mode", ceil_mode),
                 attribute_int("count_include_pad", include_pad)}));
}

// adaptive_avg_pool2d(input, output_size): a global pool, or a plain one where the output size
// divides the input size (then every window has the same size, as ONNX's pooling needs).
void adaptive_avg_pool(GraphBuilder& b, const Node* n) {
  require_4d(b, n);
  const auto in = b.shape(n->input(0));
  const auto out = b.shape(n->output(0));
  const auto x = b.name(n->input(0));
  if (out[2] == 1 && out[3] == 1) {
    b.bind(n->output(0), b.emit("GlobalAveragePool", {x}, hint(n)));
    return;
  }
  if (in[2] % out[2] != 0 || in[3] % out[3] != 0)
    b.refuse(n, "adaptive pooling from " + std::to_string(in[2]) + "x" + std::to_string(in[3]) +
                    " to " + std::to_string(out[2]) + "x" + std::to_string(out[3]) +
                    " has windows of different sizes, which ONNX pooling cannot express; "
                    "export at an input size where the last feature map is a whole multiple "
                    "of the pooled size");
  const Ints kernel{in[2] / out[2], in[3] / out[3]};
  b.bind(n->output(0),
         b.emit("AveragePool", {x}, hint(n),
                {attribute_ints("kernel_shape", kernel), attribute_ints("strides", kernel)}));
}

// mean(input, dim, keepdim, dtype) over H and W of a 4-D tensor.
void mean(GraphBuilder& b, const Node* n) {
  require_4d(b, n);
  auto dims = int_list(b, n->input(1));
  for (auto& d : dims) d = d < 0 ? d + 4 : d;
  std::sort(dims.begin(), dims.end());
  if (dims != Ints{2, 3} || !is_none(b, n->input(3)))
    b.refuse(n, "only the mean over H and W (dims 2, 3) is supported");
  auto pooled_name = b.emit("GlobalAveragePool", {b.name(n->input(0))}, hint(n));
  if (!b.value(n->input(2)).toBool())
    pooled_name = b.emit("Flatten", {pooled_name}, hint(n), {attribute_int("axis", 1)});
  b.bind(n->output(0), pooled_name);
}

// flatten(input, start_dim, end_dim): from dim 1 to the last, as ONNX's Flatten(axis=1) does.
void flatten(GraphBuilder& b, const Node* n) {
  const auto rank = static_cast<std::int64_t>(b.shape(n->input(0)).size());
  auto start = b.value(n->input(1)).toInt();
  auto end = b.value(n->input(2)).toInt();
  start = start < 0 ? start + rank : start;
  end = end < 0 ? end + rank : end;
  if (start == end) {
    b.bind(n->output(0), b.name(n->input(0)));
    return;
  }
  if (start != 1 || end != rank - 1)
    b.refuse(n, "only flatten from dim 1 to the last is supported (got " + std::to_string(start) +
                    " to " + std::to_string(end) + ")");
  b.bind(n->output(0),
         b.emit("Flatten", {b.name(n->input(0))}, hint(n), {attribute_int("axis", 1)}));
}

void require_2d(GraphBuilder& b, const Node* n, const Value* v) {
  if (b.shape(v).size() != 2) b.refuse(n, "only 2-D (N, features) inputs are supported");
}

// linear(input, weight, bias) = input · weightᵀ + bias
void linear(GraphBuilder& b, const Node* n) {
  require_2d(b, n, n->input(0));
  std::vector<std::string> inputs{b.name(n->input(0)), b.name(n->input(1))};
  if (!is_none(b, n->input(2))) inputs.push_back(b.name(n->input(2)));
  b.bind(n->output(0), b.emit("Gemm", inputs, hint(n), {attribute_int("transB", 1)}));
}

// addmm(self, mat1, mat2, beta, alpha) = beta · self + alpha · mat1 · mat2
void addmm(GraphBuilder& b, const Node* n) {
  require_2d(b, n, n->input(1));
  b.bind(n->output(0),
         b.emit("Gemm", {b.name(n->input(1)), b.name(n->input(2)), b.name(n->input(0))}, hint(n),
                {attribute_float("beta", static_cast<float>(number(b, n->input(3)))),
                 attribute_float("alpha", static_cast<float>(number(b, n->input(4))))}));
}

// mm / matmul of two 2-D tensors.
void matmul(GraphBuilder& b, const Node* n) {
  require_2d(b, n, n->input(0));
  require_2d(b, n, n->input(1));
  b.bind(n->output(0), b.emit("Gemm", {b.name(n->input(0)), b.name(n->input(1))}, hint(n)));
}

void transpose(GraphBuilder& b, const Node* n) {
  require_2d(b, n, n->input(0));
  b.bind(n->output(0),
         b.emit("Transpose", {b.name(n->input(0))}, hint(n), {attribute_ints("perm", {1, 0})}));
}

// batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn)
void batch_norm(GraphBuilder& b, const Node* n) {
  if (b.value(n->input(5)).toBool()) b.refuse(n, "batch norm in training mode");
  if (is_none(b, n->input(3)) || is_none(b, n->input(4)))
    b.refuse(n, "batch norm without running statistics (track_running_stats=False)");
  const auto channels = b.shape(n->input(3))[0];
  const auto scale = is_none(b, n->input(1)) ? b.constant(at::ones({channels}), hint(n) + ".weight")
                                             : b.name(n->input(1));
  const auto shift = is_none(b, n->input(2)) ? b.constant(at::zeros({channels}), hint(n) + ".bias")
                                             : b.name(n->input(2));
  b.bind(n->output(0),
         b.emit("BatchNormalization",
                {b.name(n->input(0)), scale, shift, b.name(n->input(3)), b.name(n->input(4))},
                hint(n), {attribute_float("epsilon", static_cast<float>(number(b, n->input(7))))}));
}

// The second operand of a binary op as an ONNX tensor: a tensor, or a number made a constant.
std::string operand(GraphBuilder& b, const Value* v, const std::string& name_hint) {
  const auto& iv = b.value(v);
  if (iv.isTensor()) return b.name(v);
  return b.constant(at::scalar_tensor(iv.toScalar().toDouble()), name_hint);
}

// add / sub (self, other, alpha) and mul / div (self, other).
void binary(GraphBuilder& b, const Node* n, const std::string& op_type) {
  if (n->inputs().size() > 2 && !b.value(n->input(2)).isScalar() && !is_none(b, n->input(2)))
    b.refuse(n, "a rounding mode is not supported");
  const bool scaled = (op_type == "Add" || op_type == "Sub") && n->inputs().size() > 2 &&
                      number(b, n->input(2)) != 1.0;
  auto other = operand(b, n->input(1), hint(n) + ".other");
  if (scaled) {
    const auto alpha = b.constant(at::scalar_tensor(number(b, n->input(2))), hint(n) + ".alpha");
    other = b.emit("Mul", {other, alpha}, hint(n) + ".scaled");
  }
  auto self = b.name(n->input(0));
  // A computed [N, C, 1, 1] tensor (a squeeze-and-excitation gate) with a computed [N, C, H, W]
  // one: the gate is first resized (nearest, a copy) to H x W, as OpenCV 4.6 broadcasts such a
  // product only for a batch of one.
  if (b.value(n->input(1)).isTensor() && b.is_dynamic(n->input(1))) {
    const auto out = b.shape(n->output(0));
    const auto spread = [&](const Value* v, const std::string& name) {
      const auto in = b.shape(v);
      if (in == out || in.size() != 4 || out.size() != 4 || in[1] != out[1] || in[2] != 1 ||
          in[3] != 1)
        return name;
      const auto scales = b.constant(
          at::tensor({1.0f, 1.0f, static_cast<float>(out[2]), static_cast<float>(out[3])}),
          hint(n) + ".scales");
      return b.emit("Resize", {name, "", scales}, hint(n) + ".spread",
                    {attribute_string("mode", "nearest")});
    };
    self = spread(n->input(0), self);
    other = spread(n->input(1), other);
  }
  b.bind(n->output(0), b.emit(op_type, {self, other}, hint(n)));
}

void unary(GraphBuilder& b, const Node* n, const std::string& op_type,
           const std::vector<Message>& attributes = {}) {
  b.bind(n->output(0), b.emit(op_type, {b.name(n->input(0))}, hint(n), attributes));
}

// hardsigmoid(x) = clamp(x / 6 + 1 / 2, 0, 1)
std::vector<Message> hardsigmoid_attributes() {
  return {attribute_float("alpha", 1.0f / 6.0f), attribute_float("beta", 0.5f)};
}

// x · gate(x): hardswish (gate hardsigmoid), SiLU (gate sigmoid).
void gated(GraphBuilder& b, const Node* n, const std::string& gate,
           const std::vector<Message>& attributes = {}) {
  const auto x = b.name(n->input(0));
  const auto g = b.emit(gate, {x}, hint(n) + ".gate", attributes);
  b.bind(n->output(0), b.emit("Mul", {x, g}, hint(n)));
}

// clamp between two numbers: hardtanh(x, min, max), relu6(x) = hardtanh(x, 0, 6), as
// min + relu(x - min) - relu(x - max). (ONNX's Clip takes its bounds as inputs from opset 11 on,
// which OpenCV 4.6 does not read.)
void clip(GraphBuilder& b, const Node* n, double low, double high) {
  const auto x = b.name(n->input(0));
  const auto shifted = [&](double by, const std::string& what) {
    if (by == 0.0) return x;
    return b.emit("Sub", {x, b.constant(at::scalar_tensor(by), hint(n) + "." + what)},
                  hint(n) + ".minus_" + what);
  };
  const auto above_low = b.emit("Relu", {shifted(low, "min")}, hint(n) + ".above_min");
  const auto above_high = b.emit("Relu", {shifted(high, "max")}, hint(n) + ".above_max");
  auto out = b.emit("Sub", {above_low, above_high}, hint(n) + (low == 0.0 ? "" : ".from_min"));
  if (low != 0.0)
    out = b.emit("Add", {out, b.constant(at::scalar_tensor(low), hint(n) + ".min_again")}, hint(n));
  b.bind(n->output(0), out);
}

void identity(GraphBuilder& b, const Node* n) { b.bind(n->output(0), b.name(n->input(0))); }

// dropout(input, p, train): the identity at inference.
void dropout(GraphBuilder& b, const Node* n) {
  if (b.value(n->input(2)).toBool()) b.refuse(n, "dropout in training mode");
  identity(b, n);
}

// Each op and its in-place form ("relu" and "relu_").
const std::map<std::string, Converter>& table() {
  static const std::map<std::string, Converter> ops = [] {
    std::map<std::string, Converter> t;
    const auto both = [&t](const std::string& name, Converter f) {
      t["aten::" + name] = f;
      t["aten::" + name + "_"] = f;
    };
    t["aten::conv2d"] = convolution;
    t["aten::_convolution"] = convolution;
    t["aten::convolution"] = convolution;
    t["aten::max_pool2d"] = max_pool;
    t["aten::avg_pool2d"] = avg_pool;
    t["aten::adaptive_avg_pool2d"] = adaptive_avg_pool;
    t["aten::mean"] = mean;
    t["aten::flatten"] = flatten;
    t["aten::linear"] = linear;
    t["aten::addmm"] = addmm;
    t["aten::mm"] = matmul;
    t["aten::matmul"] = matmul;
    t["aten::t"] = transpose;
    t["aten::batch_norm"] = batch_norm;
    t["aten::contiguous"] = identity;
    t["aten::detach"] = identity;
    t["aten::clone"] = identity;
    for (const char* name :
         {"dropout", "feature_dropout", "alpha_dropout", "feature_alpha_dropout"})
      both(name, dropout);
    both("relu", [](GraphBuilder& b, const Node* n) { unary(b, n, "Relu"); });
    both("sigmoid", [](GraphBuilder& b, const Node* n) { unary(b, n, "Sigmoid"); });
    both("hardsigmoid", [](GraphBuilder& b, const Node* n) {
      unary(b, n, "HardSigmoid", hardsigmoid_attributes());
    });
    both("hardswish", [](GraphBuilder& b, const Node* n) {
      gated(b, n, "HardSigmoid", hardsigmoid_attributes());
    });
    both("silu", [](GraphBuilder& b, const Node* n) { gated(b, n, "Sigmoid"); });
    both("relu6", [](GraphBuilder& b, const Node* n) { clip(b, n, 0.0, 6.0); });
    both("hardtanh", [](GraphBuilder& b, const Node* n) {
      clip(b, n, number(b, n->input(1)), number(b, n->input(2)));
    });
    both("add", [](GraphBuilder& b, const Node* n) { binary(b, n, "Add"); });
    both("sub", [](GraphBuilder& b, const Node* n) { binary(b, n, "Sub"); });
    both("mul", [](GraphBuilder& b, const Node* n) { binary(b, n, "Mul"); });
    both("div", [](GraphBuilder& b, const Node* n) { binary(b, n, "Div"); });
    return t;
  }();
  return ops;
}

}  // namespace

bool convert_node(GraphBuilder& builder, const Node* node) {
  const auto& ops = table();
  auto it = ops.find(node->kind().toQualString());
  if (it == ops.end()) return false;
  it->second(builder, node);
  // An in-place op's input now holds the result too.
  const std::string kind = node->kind().toQualString();
  if (kind.back() == '_' && kind.find("__") == std::string::npos)
    builder.bind(node->input(0), builder.name(node->output(0)));
  return true;
}

std::string supported_ops() {
  std::string list;
  for (const auto& [name, converter] : table()) {
    if (name.back() == '_') continue;
    list += (list.empty() ? "" : ", ") + name;
  }
  return list;
}

bool reads_shape_only(const Node* node) {
  const auto kind = node->kind();
  return kind == c10::aten::size || kind == c10::aten::dim || kind == c10::aten::len ||
         kind == c10::prim::device || kind == c10::prim::dtype;
}

}  // namespace tlkit::model::onnx
