// Command temporal-rollouts-probe answers with Argo Rollouts' own condition evaluator
// (utils/evaluate), for the differential tests in tests/conformance.
//
// Each stdin line is a JSON object {"condition": C, "result": R} or {"success": S, "failure": F,
// "result": R}; R is decoded as Argo's web provider decodes a body (encoding/json into interface{}).
// Each stdout line answers it: {"value": bool} or {"phase": P}, with "error" when evaluation failed.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"

	"github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	"github.com/argoproj/argo-rollouts/utils/evaluate"
)

type request struct {
	Condition *string         `json:"condition"`
	Success   string          `json:"success"`
	Failure   string          `json:"failure"`
	Result    json.RawMessage `json:"result"`
}

type answer struct {
	Value *bool  `json:"value,omitempty"`
	Phase string `json:"phase,omitempty"`
	Error string `json:"error,omitempty"`
}

func run(line []byte) (out answer) {
	defer func() {
		if r := recover(); r != nil {
			out = answer{Error: fmt.Sprintf("panic: %v", r)}
		}
	}()
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return answer{Error: "bad request: " + err.Error()}
	}
	var result any
	if len(req.Result) > 0 {
		if err := json.Unmarshal(req.Result, &result); err != nil {
			return answer{Error: "bad result: " + err.Error()}
		}
	}
	if req.Condition != nil {
		v, err := evaluate.EvalCondition(result, *req.Condition)
		if err != nil {
			return answer{Error: err.Error()}
		}
		return answer{Value: &v}
	}
	metric := v1alpha1.Metric{SuccessCondition: req.Success, FailureCondition: req.Failure}
	phase, err := evaluate.EvaluateResult(result, metric, *logrus.NewEntry(logrus.New()))
	out = answer{Phase: string(phase)}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if err := enc.Encode(run(in.Bytes())); err != nil {
			os.Exit(1)
		}
	}
}
