#pragma once
// The walk behind export_onnx: a frozen TorchScript graph is run node by node on an example batch
// (so every shape, list argument and branch condition has its value), and each node whose tensor
// inputs depend on the graph's input is translated into ONNX nodes by the op table
// (onnx_ops.cpp). Nodes that do not depend on the input are folded: their tensors become
// initializers. In-place ops (relu_, add_) rebind the mutated value to the new ONNX tensor, so
// later readers see the result as TorchScript's do.

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/ir/ir.h>

#include "onnx_proto.h"

namespace tlkit::model::onnx {

class GraphBuilder {
 public:
  // Walks `graph` (inputs: the module, then one image batch) with `example` as the batch; the
  // ONNX graph's input is "input" and its output "logits".
  void run(const torch::jit::Graph& graph, const c10::IValue& module, const at::Tensor& example);

  GraphParts& parts() { return parts_; }
  std::vector<std::int64_t> output_shape() const { return output_shape_; }
  const std::set<std::string>& op_types() const { return op_types_; }

  // For the op table.
  const c10::IValue& value(const torch::jit::Value* v) const;
  bool is_dynamic(const torch::jit::Value* v) const { return dynamic_.count(v) > 0; }
  std::vector<std::int64_t> shape(const torch::jit::Value* v) const;
  // The ONNX tensor holding `v`: the node output bound to it, or an initializer made (once) from
  // its folded value, converted to float32.
  std::string name(const torch::jit::Value* v);
  // A new float32 initializer.
  std::string constant(const at::Tensor& tensor, const std::string& hint);
  // A new int64 initializer of one dimension (shapes, axes).
  std::string int64_constant(const std::vector<std::int64_t>& values, const std::string& hint);
  // Adds an ONNX node with one output and returns that output's name.
  std::string emit(const std::string& op_type, const std::vector<std::string>& inputs,
                   const std::string& hint, const std::vector<Message>& attributes = {});
  void bind(const torch::jit::Value* v, const std::string& onnx_name) { names_[v] = onnx_name; }
  [[noreturn]] void refuse(const torch::jit::Node* node, const std::string& why) const;

 private:
  void walk(const torch::jit::Block& block);
  void visit(const torch::jit::Node* node);
  void evaluate(const torch::jit::Node* node);
  std::string unique(const std::string& hint);

  std::unordered_map<const torch::jit::Value*, c10::IValue> values_;
  std::unordered_set<const torch::jit::Value*> dynamic_;
  std::unordered_map<const torch::jit::Value*, std::string> names_;
  std::set<std::string> used_names_;
  std::set<std::string> op_types_;
  std::vector<std::int64_t> output_shape_;
  GraphParts parts_;
};

// Emits the ONNX nodes for `node` (whose outputs are already evaluated) and binds its outputs;
// false when the op is not one the table knows.
bool convert_node(GraphBuilder& builder, const torch::jit::Node* node);

// The ops convert_node knows, for error messages ("aten::conv2d, aten::relu, ...").
std::string supported_ops();

// Ops whose outputs are shapes or ranks only (their tensor inputs are not read).
bool reads_shape_only(const torch::jit::Node* node);

}  // namespace tlkit::model::onnx
