//! Strategic merge patch cases modelled on upstream's `strategicpatch` test tables, run
//! against the real schemas of the kinds involved.

use serde_json::{Value, json};

use super::*;

const POD: Gvk<'static> = Gvk {
    group: "",
    version: "v1",
    kind: "Pod",
};
const DEPLOYMENT: Gvk<'static> = Gvk {
    group: "apps",
    version: "v1",
    kind: "Deployment",
};
const CONFIGMAP: Gvk<'static> = Gvk {
    group: "",
    version: "v1",
    kind: "ConfigMap",
};

fn apply(gvk: Gvk<'_>, original: &Value, patch: Value) -> Result<Value, ApiError> {
    apply_strategic(original, patch.to_string().as_bytes(), gvk)
}

fn ok(gvk: Gvk<'_>, original: &Value, patch: Value) -> Value {
    apply(gvk, original, patch).unwrap_or_else(|e| panic!("patch failed: {e}"))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|e| e[key].to_string().trim_matches('"').to_string())
        .collect()
}

fn pod(containers: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}},
           "spec": {"containers": containers}})
}

#[test]
fn containers_merge_by_name() {
    let cur =
        pod(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1", "args": ["x"]}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2", "args": ["x"]}])
    );
    // A merge patch on the same document would have dropped container "a".
    let mut merge = cur.clone();
    json_patch::merge(
        &mut merge,
        &json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
    );
    assert_eq!(
        merge["spec"]["containers"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn new_list_items_go_first_unless_ordered() {
    let cur = pod(json!([{"name": "a"}, {"name": "b"}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "c", "image": "c"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"], "name"), ["c", "a", "b"]);
    let out = ok(
        POD,
        &cur,
        json!({"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "containers": [{"name": "c", "image": "c"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"], "name"), ["a", "b", "c"]);
}

#[test]
fn patch_order_wins_for_patched_items() {
    // Upstream's "preserve the order from the patch in a merging list 2".
    let cur = pod(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}])
    );
}

#[test]
fn ports_merge_by_container_port_and_volume_mounts_by_mount_path() {
    let cur = pod(
        json!([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}],
                          "volumeMounts": [{"name": "v1", "mountPath": "/a"}]}]),
    );
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a",
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "volumeMounts": [{"name": "v2", "mountPath": "/a"}, {"name": "v3", "mountPath": "/b"}]}]}}),
    );
    let c = &out["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
    );
    assert_eq!(
        c["volumeMounts"],
        json!([{"name": "v2", "mountPath": "/a"}, {"name": "v3", "mountPath": "/b"}])
    );
}

#[test]
fn env_delete_directive_removes_by_merge_key() {
    let cur = pod(
        json!([{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}]),
    );
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "B", "$patch": "delete"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}, {"name": "C", "value": "3"}])
    );
    // Deleting an element that is not there is not an error.
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Z", "$patch": "delete"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"].as_array().map(Vec::len),
        Some(3)
    );
    // Without the merge key the element cannot be found: upstream's error.
    let e = apply(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "env": [{"$patch": "delete"}]}]}}),
    )
    .unwrap_err();
    assert_eq!(e.code(), 500);
    assert_eq!(
        e.to_string(),
        "map: map[$patch:delete] does not contain declared merge key: name"
    );
}

#[test]
fn set_element_order_reorders_and_keeps_server_only_items() {
    let cur = pod(
        json!([{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B"}, {"name": "C"}]}]),
    );
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a",
        "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}]}]}}),
    );
    assert_eq!(
        names(&out["spec"]["containers"][0]["env"], "name"),
        ["C", "A", "B"]
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"][1],
        json!({"name": "A", "value": "1"})
    );
    // Upstream's "merge lists of maps": server-only fields survive, the new items take the
    // directive's places.
    let cur = pod(json!([{"name": "1", "image": "x"}, {"name": "2", "image": "y"}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {
        "$setElementOrder/containers": [{"name": "4"}, {"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "4", "image": "d"}, {"name": "3", "image": "c"}]}}),
    );
    assert_eq!(
        names(&out["spec"]["containers"], "name"),
        ["4", "1", "2", "3"]
    );
    assert_eq!(out["spec"]["containers"][1]["image"], "x");
    // An item the directive does not list goes before the first listed item it preceded live.
    let cur = pod(json!([{"name": "a"}, {"name": "s"}, {"name": "b"}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"], "name"), ["s", "b", "a"]);
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"], "name"), ["a", "s", "b"]);
}

#[test]
fn set_element_order_does_not_undo_a_null() {
    let cur = pod(json!([{"name": "a", "env": [{"name": "A"}, {"name": "B"}]}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "$setElementOrder/env": [{"name": "B"}], "env": null}]}}),
    );
    assert!(out["spec"]["containers"][0].get("env").is_none(), "{out}");
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let cur = pod(json!([{"name": "1"}, {"name": "3"}, {"name": "2"}]));
    let e = apply(
        POD,
        &cur,
        json!({"spec": {
        "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
        "containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("doesn't match $setElementOrder list"),
        "{e}"
    );
    let e = apply(
        POD,
        &cur,
        json!({"spec": {"$setElementOrder": [{"name": "1"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (400, "invalid patch format of setElementOrder list")
    );
}

#[test]
fn retain_keys_clears_other_strategy_fields() {
    let cur = json!({"spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}});
    let out = ok(
        DEPLOYMENT,
        &cur,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(out["spec"]["replicas"], 2);
    // Without the directive the map merges and rollingUpdate stays.
    let out = ok(
        DEPLOYMENT,
        &cur,
        json!({"spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(out["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
    // Setting a key the directive does not retain is refused.
    let e = apply(
        DEPLOYMENT,
        &cur,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (400, "invalid patch format of retainKeys")
    );
    let e = apply(
        DEPLOYMENT,
        &cur,
        json!({"spec": {"strategy": {"$retainKeys": "type"}}}),
    )
    .unwrap_err();
    assert_eq!(e.code(), 400);
}

#[test]
fn retain_keys_switches_a_volume_source() {
    let mut cur = pod(json!([{"name": "a"}]));
    cur["spec"]["volumes"] =
        json!([{"name": "data", "hostPath": {"path": "/srv"}}, {"name": "other", "emptyDir": {}}]);
    let out = ok(
        POD,
        &cur,
        json!({"spec": {
        "$setElementOrder/volumes": [{"name": "data"}, {"name": "other"}],
        "volumes": [{"$retainKeys": ["emptyDir", "name"], "emptyDir": {"medium": "Memory"}, "name": "data"}]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "other", "emptyDir": {}}])
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let cur = json!({"metadata": {"name": "c", "finalizers": ["a", "b", "c"]}});
    let out = ok(
        CONFIGMAP,
        &cur,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    let out = ok(
        CONFIGMAP,
        &cur,
        json!({"metadata": {"finalizers": ["c", "d"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c", "d"]));
    // kubectl's form for "remove b, add d, in this order".
    let out = ok(
        CONFIGMAP,
        &cur,
        json!({"metadata": {
        "$setElementOrder/finalizers": ["a", "d", "c"],
        "$deleteFromPrimitiveList/finalizers": ["b"],
        "finalizers": ["d"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "d", "c"]));
    // Deleting from a list that is absent does not create it.
    let out = ok(
        CONFIGMAP,
        &json!({"metadata": {"name": "c"}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
    );
    assert!(out["metadata"].get("finalizers").is_none());
    let e = apply(
        CONFIGMAP,
        &cur,
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["b"]}}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (400, "invalid patch format of primitive list")
    );
}

#[test]
fn lists_without_merge_strategy_are_replaced() {
    let cur = pod(json!([{"name": "a", "args": ["1", "2"], "command": ["sh"]}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "args": ["3"]}],
        "tolerations": [{"key": "k", "operator": "Exists"}]}}),
    );
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
    assert_eq!(out["spec"]["containers"][0]["command"], json!(["sh"]));
    let out2 = ok(
        POD,
        &out,
        json!({"spec": {"tolerations": [{"key": "j", "operator": "Exists"}]}}),
    );
    assert_eq!(
        out2["spec"]["tolerations"],
        json!([{"key": "j", "operator": "Exists"}])
    );
}

#[test]
fn maps_merge_recursively_and_null_deletes() {
    let cur = pod(json!([{"name": "a"}]));
    let out = ok(
        POD,
        &cur,
        json!({"metadata": {"labels": {"a": null, "c": "3"}, "annotations": {"x": "y"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"b": "2", "c": "3"}));
    assert_eq!(out["metadata"]["annotations"], json!({"x": "y"}));
    // A null for an absent key is ignored rather than stored.
    let out = ok(POD, &cur, json!({"spec": {"hostname": null}}));
    assert!(out["spec"].get("hostname").is_none());
}

#[test]
fn replace_and_delete_directives_on_maps() {
    let cur = pod(json!([{"name": "a"}]));
    let out = ok(
        POD,
        &cur,
        json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    let out = ok(
        POD,
        &cur,
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({}));
    // At the top the whole object is replaced.
    let out = ok(
        CONFIGMAP,
        &json!({"metadata": {"name": "c"}, "data": {"k": "v"}}),
        json!({"$patch": "replace", "data": {"n": "m"}}),
    );
    assert_eq!(out, json!({"data": {"n": "m"}}));
    // `merge` is not a map directive upstream; neither is anything else.
    let e = apply(
        POD,
        &cur,
        json!({"metadata": {"labels": {"$patch": "merge"}}}),
    )
    .unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (500, "unknown patch type: merge in map: map[$patch:merge]")
    );
}

#[test]
fn replace_and_merge_directives_on_list_elements() {
    let cur = pod(json!([{"name": "a", "image": "a"}, {"name": "b"}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "x", "image": "x"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "x", "image": "x"}])
    );
    let e = apply(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "$patch": "merge"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "merging lists cannot yet be specified in the patch"
    );
    let e = apply(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown patch type: bogus in map: "),
        "{e}"
    );
    let e = apply(
        POD,
        &cur,
        json!({"spec": {"containers": [{"image": "no-name"}]}}),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "map: map[image:no-name] does not contain declared merge key: name"
    );
}

#[test]
fn directives_in_new_fields_still_apply() {
    // The live object has no env: deletions are dropped and the rest kept as sent.
    let cur = pod(json!([{"name": "a"}]));
    let out = ok(
        POD,
        &cur,
        json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "X", "value": "1"}])
    );
}

#[test]
fn malformed_patches_are_bad_requests() {
    let cur = pod(json!([]));
    let e = apply_strategic(&cur, b"{", POD).unwrap_err();
    assert_eq!(e.code(), 400);
    let e = apply_strategic(&cur, b"[1]", POD).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string().as_str()),
        (
            400,
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    );
    // Lists of lists are refused with 422, as upstream.
    let e = apply(
        CONFIGMAP,
        &json!({"metadata": {"finalizers": []}}),
        json!({"metadata": {"finalizers": [["b"]]}}),
    )
    .unwrap_err();
    assert_eq!(e.code(), 422);
    let e = apply(
        CONFIGMAP,
        &json!({"metadata": {"finalizers": ["a"]}}),
        json!({"metadata": {"finalizers": [1]}}),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("list element types are not identical"),
        "{e}"
    );
}

#[test]
fn unknown_kinds_replace_lists() {
    let out = strategic_merge(
        &json!({"items": [1, 2], "m": {"a": 1}}),
        serde_json::from_value(json!({"items": [3], "m": {"b": 2}})).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(out, json!({"items": [3], "m": {"a": 1, "b": 2}}));
}

#[test]
fn scale_subresource_patch() {
    let scale = json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
    let out = ok(
        Gvk {
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
        },
        &scale,
        json!({"spec": {"replicas": 4}}),
    );
    assert_eq!(out["spec"]["replicas"], 4);
}
