#include "onnx_builder.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/csrc/jit/runtime/operator.h>

#include <tlkit/core/error.h>

namespace tlkit::model::onnx {
namespace {

using torch::jit::Node;
using torch::jit::Value;

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

bool has_tensor_output(const Node* node) {
  return std::any_of(node->outputs().begin(), node->outputs().end(),
                     [](const Value* v) { return v->type()->kind() == c10::TypeKind::TensorType; });
}

// Where the op comes from in the model's source, when TorchScript kept it ("file.py:72").
std::string source_of(const Node* node) {
  const auto& range = node->sourceRange();
  if (!range.source()) return "";
  if (auto original = range.findSourceRangeThatGenerated()) {
    if (auto file = original->file_line_col()) {
      return std::get<0>(*file) + ":" + std::to_string(std::get<1>(*file));
    }
  }
  if (auto file = range.file_line_col()) {
    return std::get<0>(*file) + ":" + std::to_string(std::get<1>(*file));
  }
  return "";
}

}  // namespace

void GraphBuilder::run(const torch::jit::Graph& graph, const c10::IValue& module,
                       const at::Tensor& example) {
  const auto inputs = graph.inputs();
  TLKIT_CHECK(inputs.size() == 2, "ONNX export takes a forward(self, images) with one input; this ",
              "model's forward has ", inputs.size() - 1, " inputs");
  TLKIT_CHECK(inputs[1]->type()->kind() == c10::TypeKind::TensorType,
              "ONNX export takes a forward whose input is one image tensor; this one takes ",
              inputs[1]->type()->str());
  values_[inputs[0]] = module;
  values_[inputs[1]] = example;
  dynamic_.insert(inputs[1]);
  bind(inputs[1], "input");
  used_names_.insert("input");
  used_names_.insert("logits");
  walk(*graph.block());

  const auto outputs = graph.outputs();
  TLKIT_CHECK(
      outputs.size() == 1 && outputs[0]->type()->kind() == c10::TypeKind::TensorType,
      "ONNX export takes a model that returns one tensor of scores; this one returns ",
      outputs.size() == 1 ? outputs[0]->type()->str() : std::to_string(outputs.size()) + " values");
  TLKIT_CHECK(is_dynamic(outputs[0]), "the model's output does not depend on its input");
  output_shape_ = shape(outputs[0]);
  // The output keeps one fixed name, whatever the op that computes it.
  parts_.nodes.push_back(node("Identity", {name(outputs[0])}, {"logits"}, "output"));
  op_types_.insert("Identity");
}

void GraphBuilder::walk(const torch::jit::Block& block) {
  for (const Node* node : block.nodes()) visit(node);
}

void GraphBuilder::visit(const Node* node) {
  const auto kind = node->kind();
  if (kind == c10::prim::If) {
    // The condition is known for the example input: take that branch only.
    const bool taken = value(node->input(0)).toBool();
    const auto* branch = node->blocks()[taken ? 0 : 1];
    walk(*branch);
    for (size_t i = 0; i < node->outputs().size(); ++i) {
      const Value* from = branch->outputs()[i];
      values_[node->output(i)] = value(from);
      if (is_dynamic(from)) {
        dynamic_.insert(node->output(i));
        bind(node->output(i), name(from));
      }
    }
    return;
  }
  if (kind == c10::prim::RaiseException) {
    const auto& message = value(node->input(0));
    refuse(node, "the model raises an exception on a batch of its input size: " +
                     (message.isString() ? message.toStringRef() : std::string("(no message)")));
  }
  if (kind == c10::prim::Loop) refuse(node, "loops are not supported");
  const bool depends = std::any_of(node->inputs().begin(), node->inputs().end(),
                                   [&](const Value* v) { return is_dynamic(v); });
  if (depends && (kind == c10::prim::ListConstruct || kind == c10::prim::TupleConstruct))
    refuse(node,
           "lists and tuples of computed tensors (torch.cat, torch.stack, several "
           "outputs) are not supported");
  if (depends && !has_tensor_output(node) && !reads_shape_only(node))
    refuse(node, "it turns tensor data into a value the graph branches or computes on");
  evaluate(node);
  if (!depends || !has_tensor_output(node)) return;  // folded into constants
  for (const Value* out : node->outputs()) {
    TLKIT_CHECK(out->type()->kind() == c10::TypeKind::TensorType,
                "ONNX export: ", node->kind().toQualString(), " returns a ", out->type()->str(),
                " beside a tensor, which is not supported");
    const auto& tensor = value(out).toTensor();
    if (tensor.scalar_type() != at::kFloat)
      refuse(node, std::string("it computes a ") + c10::toString(tensor.scalar_type()) +
                       " tensor; ONNX export handles float32 models");
    dynamic_.insert(out);
  }
  if (!convert_node(*this, node))
    refuse(node, "ONNX export does not support this op; supported: " + supported_ops());
}

void GraphBuilder::evaluate(const Node* node) {
  if (node->kind() == c10::prim::Constant) {
    auto constant = torch::jit::toIValue(node->output());
    if (!constant) refuse(node, "a constant of unsupported type " + node->output()->type()->str());
    values_[node->output()] = *constant;
    return;
  }
  torch::jit::Stack stack;
  for (const Value* in : node->inputs()) stack.push_back(value(in));
  try {
    node->getOperation()(stack);
  } catch (const std::exception& e) {
    refuse(node, "it cannot be run on a batch of the model's input size: " + first_line(e.what()));
  }
  TLKIT_CHECK(stack.size() == node->outputs().size(), "ONNX export: ", node->kind().toQualString(),
              " gave ", stack.size(), " values for ", node->outputs().size(), " outputs");
  for (size_t i = 0; i < node->outputs().size(); ++i) values_[node->output(i)] = stack[i];
}

const c10::IValue& GraphBuilder::value(const Value* v) const {
  auto it = values_.find(v);
  TLKIT_CHECK(it != values_.end(), "ONNX export: the value %", v->debugName(),
              " is used before it is computed");
  return it->second;
}

std::vector<std::int64_t> GraphBuilder::shape(const Value* v) const {
  const auto sizes = value(v).toTensor().sizes();
  return {sizes.begin(), sizes.end()};
}

std::string GraphBuilder::name(const Value* v) {
  if (auto it = names_.find(v); it != names_.end()) return it->second;
  const auto& folded = value(v);
  TLKIT_CHECK(folded.isTensor(), "ONNX export: %", v->debugName(), " (", v->type()->str(),
              ") is used as a tensor");
  const auto onnx_name = constant(folded.toTensor(), v->debugName());
  bind(v, onnx_name);
  return onnx_name;
}

std::string GraphBuilder::constant(const at::Tensor& tensor, const std::string& hint) {
  const auto data = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
  const auto onnx_name = unique(hint);
  std::vector<std::int64_t> dims(data.sizes().begin(), data.sizes().end());
  parts_.initializers.push_back(onnx::tensor(onnx_name, dims, kFloat, data.data_ptr(),
                                             static_cast<size_t>(data.numel()) * sizeof(float)));
  return onnx_name;
}

std::string GraphBuilder::int64_constant(const std::vector<std::int64_t>& values,
                                         const std::string& hint) {
  const auto onnx_name = unique(hint);
  parts_.initializers.push_back(onnx::tensor(onnx_name, {static_cast<std::int64_t>(values.size())},
                                             kInt64, values.data(),
                                             values.size() * sizeof(std::int64_t)));
  return onnx_name;
}

std::string GraphBuilder::emit(const std::string& op_type, const std::vector<std::string>& inputs,
                               const std::string& hint, const std::vector<Message>& attributes) {
  const auto out = unique(hint);
  parts_.nodes.push_back(node(op_type, inputs, {out}, out, attributes));
  op_types_.insert(op_type);
  return out;
}

std::string GraphBuilder::unique(const std::string& hint) {
  std::string base;
  for (char c : hint) base += std::isalnum(static_cast<unsigned char>(c)) || c == '.' ? c : '_';
  if (base.empty()) base = "v";
  std::string candidate = base;
  for (int i = 1; used_names_.count(candidate); ++i) candidate = base + "_" + std::to_string(i);
  used_names_.insert(candidate);
  return candidate;
}

void GraphBuilder::refuse(const Node* node, const std::string& why) const {
  std::ostringstream out;
  out << "cannot export to ONNX: op " << node->kind().toQualString();
  if (const auto where = source_of(node); !where.empty()) out << " (at " << where << ")";
  out << ": " << why;
  throw Error(out.str());
}

}  // namespace tlkit::model::onnx
