"""Reliability coverage matrix: every bullet of issue 4 and every numbered case of
docs/reliability.md §7 (1-78), mapped to the tests that cover it, or why it does not apply, or
"not done". The test below keeps the map honest: every ``file.py::test_name`` named here must
exist, so renaming or deleting a covering test fails the suite until the map is updated.

Exit codes are the project's (0 completed, 1 the run ended otherwise, 2 invalid file or usage and
nothing sent, 3 API/provider error, 130 interrupted); where docs/reliability.md proposes another code
(its "exit 4"), flowrun uses 3, and for max turns 1.

ISSUE 4: Model misbehaviour (the run goes on; the model gets a readable error output)
  unknown tool name ........ test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
                             test_dispatcher.py::test_unknown_tool_suggests_the_closest_name_and_lists_all
                             test_cli_run.py::test_invalid_and_unknown_tool_calls_become_error_outputs_and_the_run_goes_on
  arguments not JSON ....... test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
                             test_dispatcher.py::test_invalid_json_is_an_error_output_and_the_tool_does_not_run
  JSON but not an object ... test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
                             test_dispatcher.py::test_json_that_is_not_an_object_is_refused
  schema violations (missing required, wrong type, extra field with additionalProperties: false)
                             test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
                             test_dispatcher.py::test_schema_violations_are_all_listed_with_paths_and_nothing_runs
  same call forever ........ test_reliability_model.py::test_the_same_call_forever_stops_at_max_turns_and_keeps_every_completed_call
                             test_cli_run.py::test_max_turns_stops_a_model_that_never_stops
  empty / whitespace name .. test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
  50 parallel calls ........ test_reliability_api.py::test_50_parallel_calls_in_one_turn_get_50_outputs_in_one_submission

ISSUE 4: Tool faults
  python raises ............ test_reliability_tools.py::test_python_tools_that_raise_return_junk_or_hang_become_error_outputs
                             test_dispatcher.py::test_exception_text_is_the_output
  non-serializable ......... test_reliability_tools.py::test_python_tools_that_raise_return_junk_or_hang_become_error_outputs
                             test_dispatcher.py::test_a_value_that_cannot_be_serialized_is_an_error_output
                             test_dispatcher.py::test_return_values_are_serialized_deterministically
  prints to stdout (JSONL) . test_reliability_tools.py::test_a_tool_printing_to_stdout_does_not_corrupt_jsonl
                             test_python_tool.py::test_what_tools_print_goes_to_stderr_not_stdout
  hangs (timeout, default 60 s, abandoned, reported)
                             test_reliability_tools.py::test_a_hanging_tool_is_abandoned_and_the_process_exits_without_waiting_for_it
                             test_reliability_tools.py::test_the_default_tool_timeout_is_60_seconds
                             test_dispatcher.py::test_a_hanging_tool_times_out_and_is_abandoned
  missing (validate --resolve; run time)
                             test_reliability_tools.py::test_a_missing_module_is_reported_by_validate_resolve
                             test_reliability_tools.py::test_python_tools_that_raise_return_junk_or_hang_become_error_outputs
                             test_validate.py::test_bad_entrypoints_with_resolve
                             test_python_tool.py::test_import_problems_at_run_time_are_error_outputs
  HTTP times out ........... test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_http_tool.py::test_total_deadline
  HTTP connection refused .. test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_http_tool.py::test_connection_refused_is_an_error_output
  HTTP 4xx/5xx, status + bounded body excerpt
                             test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_reliability_tools.py::test_an_error_body_reaches_the_model_as_a_bounded_excerpt
                             test_http_tool.py::test_404_and_500_are_error_outputs_with_status_and_body
  HTTP 200 with 50 MB (configurable cap, default 1 MB, with a note)
                             test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_http_tool.py::test_a_50_mb_body_is_cut_at_the_cap_without_downloading_it
  HTTP non-UTF-8 ........... test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_http_tool.py::test_non_utf8_is_decoded_with_replacement_and_flagged
  HTTP redirects ........... test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_http_tool.py::test_redirects_are_not_followed_by_default
                             test_http_tool.py::test_redirect_within_the_origin_is_followed_when_allowed
                             test_http_tool.py::test_too_many_redirects
  retries only where safe, bounded
                             test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
                             test_http_tool.py::test_503_with_retry_after_is_retried_then_reported
                             test_http_tool.py::test_retries_recover_from_a_flaky_server
                             test_http_tool.py::test_post_is_never_retried_and_long_retry_after_is_not_waited_for

ISSUE 4: HTTP tool security
  percent-encoding; ../ ? # @ %2F tricks
                             test_reliability_tools.py::test_hostile_arguments_never_leave_the_declared_host_and_path
                             test_http_tool.py::test_path_argument_is_one_encoded_segment
                             test_http_tool.py::test_traversal_in_a_path_argument_is_refused_before_sending
                             test_http_tool.py::test_query_injection_stays_one_parameter
                             test_http_tool.py::test_query_in_the_url_template_is_encoded_too
  only the template's host; allow_hosts for hosts from arguments
                             test_http_tool.py::test_host_from_an_argument_may_reach_allow_hosts_only
                             test_http_tool.py::test_a_whole_url_from_an_argument_is_checked_against_allow_hosts
                             test_http_tool.py::test_authority_injection_is_refused
                             test_validate.py::test_model_chosen_url_authority
  loopback / link-local / private / unique-local refused on the resolved IP (DNS, redirects)
                             test_reliability_tools.py::test_hostile_arguments_never_leave_the_declared_host_and_path
                             test_http_tool.py::test_loopback_and_metadata_are_refused_without_allow_private_network
                             test_http_tool.py::test_dns_answers_are_all_checked
                             test_http_tool.py::test_redirect_to_a_foreign_or_metadata_target_is_blocked
                             test_http_tool.py::test_the_connection_goes_to_the_vetted_address_with_the_name_in_host
  CR/LF in a header value .. test_reliability_tools.py::test_hostile_arguments_never_leave_the_declared_host_and_path
                             test_http_tool.py::test_header_with_crlf_or_nul_is_refused_naming_the_header_not_the_value

ISSUE 4: Secrets (masked in terminal, -v, JSONL, errors, run log, recorded cases, tool outputs
  and server error bodies; a test greps every channel)
                             test_reliability_secrets.py::test_canary_sweep_success_path_every_channel
                             test_reliability_secrets.py::test_canary_sweep_failure_paths
                             test_reliability_tools.py::test_the_http_debug_log_line_masks_a_secret_in_the_url
                             test_http_tool.py::test_secrets_are_masked_in_success_and_error_outputs
                             test_runlog.py::test_masker_masks_every_string_stored
                             test_verbose.py::test_verbose_shows_requests_and_full_outputs_with_secrets_masked

ISSUE 4: API and network faults
  429 / 5xx before a stream: retried, Retry-After honoured, visible on stderr
                             test_reliability_api.py::test_429_before_the_stream_waits_retry_after_and_says_so
                             test_reliability_api.py::test_5xx_on_the_submission_is_retried_and_the_tool_runs_once
                             test_reliability_api.py::test_5xx_past_the_retries_is_exit_3_in_one_line
                             test_reliability_api.py::test_429_through_a_real_process_is_visible_on_stderr
                             test_retries.py::test_429_with_retry_after_waits_the_advised_delay
  stream cut, Assistants: recovered from the run, no tool run twice
                             test_reliability_api.py::test_assistants_cut_in_the_tool_call_turn_is_recovered_from_the_run
                             test_reliability_api.py::test_assistants_cut_mid_answer_keeps_what_arrived_and_fetches_the_rest
                             test_reliability_api.py::test_assistants_submission_cut_after_the_server_took_it_is_not_sent_or_run_again
                             test_providers_assistants.py::test_a_retried_submission_checks_the_run_first_and_never_submits_twice
  stream cut, Responses: background resumes (provider level: the workflow file has no
  background setting yet), otherwise exit 3 with a clear message
                             test_providers_responses.py::test_background_stream_resumes_after_the_last_sequence_number_without_duplicates
                             test_reliability_api.py::test_responses_and_chat_cut_mid_answer_exit_3_and_the_log_holds_what_arrived
                             test_reliability_api.py::test_a_cut_through_a_real_process_is_one_line_and_exit_3
  stream cut, Chat: exit 3 . test_reliability_api.py::test_responses_and_chat_cut_mid_answer_exit_3_and_the_log_holds_what_arrived
                             test_reliability_api.py::test_a_cut_while_the_model_streams_tool_calls_runs_no_tool
  the run log holds what arrived (run log events == JSONL events, every case above)
                             test_reliability_api.py::test_responses_and_chat_cut_mid_answer_exit_3_and_the_log_holds_what_arrived
  tool outputs rejected (400): clear message, exit 1, log complete
                             test_reliability_api.py::test_tool_outputs_rejected_with_400_is_exit_1_with_a_clear_message
  run expired while a tool was slow: exit 1, log complete
                             test_reliability_api.py::test_assistants_run_expired_while_a_tool_was_slow_is_exit_1_and_the_log_is_complete
                             test_reliability_api.py::test_assistants_tools_are_cut_short_to_submit_before_the_run_expires
  401, 404, unreachable, TLS: exit 3, one line, no traceback
                             test_reliability_api.py::test_401_names_the_variable_and_never_echoes_the_key
                             test_reliability_api.py::test_401_with_a_custom_key_variable_names_that_variable
                             test_reliability_api.py::test_404_is_exit_3_with_what_to_check
                             test_reliability_api.py::test_unreachable_host_is_exit_3_in_one_line
                             test_reliability_api.py::test_tls_failure_is_exit_3_one_line_and_not_retried
                             test_reliability_units.py::test_only_failures_that_waiting_cannot_fix_skip_the_retries

ISSUE 4: Bad workflow files
  alias bombs, python tags never executed, 10 MB files, non-UTF-8, missing path or directory
                             test_reliability_files.py::test_a_bad_file_is_exit_2_and_nothing_is_sent_or_run
                             test_reliability_files.py::test_a_path_that_is_missing_or_a_directory_is_exit_2
                             test_yaml_loader.py::test_alias_bomb_is_refused_before_expansion
                             test_yaml_loader.py::test_unsafe_python_tags_are_refused_and_never_run
                             test_yaml_loader.py::test_huge_file_is_refused_before_reading
                             test_yaml_loader.py::test_non_utf8_bytes_point_at_the_byte
                             test_yaml_loader.py::test_missing_file_and_directory

ISSUE 4: Done when
  fault injection reusable . runner/scripted/faults.py (Fault), runner/scripted/echo.py (EchoServer)
                             test_scripted_faults.py::test_faults_match_api_and_turn_and_count_per_conversation
  soak test ................ bench/soak.py (not in the default suite; figures in the README)

docs/reliability.md §7
A. Config bad input
   1 malformed YAML ....... test_validate.py::test_invalid_file (unclosed_bracket.yaml)
                             test_yaml_loader.py::test_syntax_error_has_position_and_context
                             test_reliability_files.py::test_a_bad_file_is_exit_2_and_nothing_is_sent_or_run
   2 unsafe tags .......... test_yaml_loader.py::test_unsafe_python_tags_are_refused_and_never_run
                             test_reliability_files.py::test_a_bad_file_is_exit_2_and_nothing_is_sent_or_run
   3 alias bomb ........... test_yaml_loader.py::test_alias_bomb_is_refused_before_expansion
                             test_yaml_loader.py::test_too_many_aliases_are_refused
                             test_yaml_loader.py::test_recursive_alias_is_refused
   4 duplicate keys ....... test_yaml_loader.py::test_duplicate_keys_name_both_lines
                             test_validate.py::test_invalid_file (duplicate_key.yaml, duplicate_tools_block.yaml)
   5 implicit typing ...... test_yaml_loader.py::test_plain_scalars_follow_yaml_1_2_core_without_surprises
                             test_yaml_loader.py::test_norway_enum_stays_strings
   6 schema violations .... test_validate.py::test_all_problems_in_one_pass
                             test_validate.py::test_validate_command_json
   7 parameter schemas .... test_validate.py::test_parameter_schema_problems_name_the_tool
                             test_validate.py::test_invalid_file (parameters_*.yaml, strict_open_object.yaml)
   8 tool names ........... test_validate.py::test_duplicate_tool_names_and_test_names
                             test_validate.py::test_invalid_file (bad_tool_name.yaml, long_tool_name.yaml)
   9 bad entrypoints ...... test_validate.py::test_bad_entrypoints_with_resolve
                             test_reliability_tools.py::test_a_missing_module_is_reported_by_validate_resolve
                             partly: resolved by `validate --resolve` (importing runs code, so it is opt-in);
                             `flowrun run` reports them at call time as error outputs
  10 undefined variables .. test_validate.py::test_invalid_file (template_unknown_arg.yaml, template_unknown_input.yaml)
                             partly: an unset ${{ env.X }} is not checked before the run; the call gets an
                             error output (test_dispatcher.py::test_static_with_a_missing_env_value_is_an_error_output)
  11 URL authority from args test_validate.py::test_model_chosen_url_authority
  12 secret in URL query .. test_validate.py::test_secret_in_url_query_and_literal_auth_header_are_warnings
  13 edge files ........... test_yaml_loader.py::test_empty_files
                             test_yaml_loader.py::test_multi_document_stream
                             test_yaml_loader.py::test_tab_indentation
                             test_yaml_loader.py::test_utf8_bom_is_accepted
  14 file references ...... not applicable: the format has no file-reference fields (python entrypoints
                             are code the file names on purpose; --no-python refuses them)
  15 out-of-range settings  test_reliability_files.py::test_out_of_range_settings_are_exit_2_before_any_request
                             test_reliability_files.py::test_max_turns_out_of_range_is_exit_2
B. Model misbehaviour
  16 invalid JSON ......... test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
  17 not an object ........ test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
  18 schema failures ...... test_dispatcher.py::test_schema_violations_are_all_listed_with_paths_and_nothing_runs
                             test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
  19 unknown tool ......... test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
                             (flowrun's one policy is the SDK's "return_error"; there is no strict mode)
  20 concatenated JSON .... test_reliability_model.py::test_every_kind_of_bad_call_gets_an_error_output_and_runs_nothing
  21 truncated arguments .. test_reliability_api.py::test_a_cut_while_the_model_streams_tool_calls_runs_no_tool
                             test_providers_chat.py::test_stream_without_finish_reason_raises_and_runs_nothing
  22 endless tool loop .... test_reliability_model.py::test_the_same_call_forever_stops_at_max_turns_and_keeps_every_completed_call
                             (exit 1, the project's code for max turns; no on_max_turns message)
  23 duplicate call ids ... test_dispatcher.py::test_results_come_back_in_call_order_with_one_per_call_even_for_duplicate_ids
                             test_providers_chat.py::test_a_missing_output_becomes_an_error_message_for_that_call
  24 oversized arguments .. test_reliability_model.py::test_huge_arguments_are_refused_before_parsing
                             test_dispatcher.py::test_oversized_arguments_are_refused_before_parsing
  25 no final output ...... not done: a completed turn with empty text ends the run with exit 0 and
                             an empty answer (changing that is the run loop's call)
C. Tool faults
  26 python raises ........ test_reliability_tools.py::test_python_tools_that_raise_return_junk_or_hang_become_error_outputs
                             (`on_error: fail` not applicable: tool errors always go to the model)
  27 python hangs ......... test_reliability_tools.py::test_a_hanging_tool_is_abandoned_and_the_process_exits_without_waiting_for_it
                             test_python_tool.py::test_a_blocking_sync_tool_does_not_block_the_event_loop
  28 non-serializable ..... test_dispatcher.py::test_return_values_are_serialized_deterministically
                             test_dispatcher.py::test_a_value_that_cannot_be_serialized_is_an_error_output
  29 sys.exit / BaseException test_dispatcher.py::test_base_exceptions_from_tools_become_outputs_and_the_loop_goes_on
  30 huge tool output ..... test_dispatcher.py::test_outputs_are_truncated_with_a_marker
  31 tool writes stdout ... test_reliability_tools.py::test_a_tool_printing_to_stdout_does_not_corrupt_jsonl
  32 HTTP 404/500/503 ..... test_http_tool.py::test_404_and_500_are_error_outputs_with_status_and_body
                             test_reliability_tools.py::test_http_tool_faults_reach_the_model_as_bounded_error_outputs
  33 HTML/binary for JSON . test_http_tool.py::test_extract_json_pointer
  34 slow HTTP target ..... test_http_tool.py::test_total_deadline
  35 control characters ... test_terminal_render.py::test_control_sequences_from_tools_never_reach_the_terminal
                             test_logs_command.py::test_show_escapes_control_characters
D. HTTP tool security
  36 path traversal ....... test_http_tool.py::test_traversal_in_a_path_argument_is_refused_before_sending
  37 encoded traversal .... test_http_tool.py::test_traversal_in_a_path_argument_is_refused_before_sending
  38 query injection ...... test_http_tool.py::test_query_injection_stays_one_parameter
  39 authority injection .. test_http_tool.py::test_authority_injection_is_refused
  40 private / metadata ... test_http_tool.py::test_loopback_and_metadata_are_refused_without_allow_private_network
                             test_http_tool.py::test_metadata_stays_blocked_even_when_allowed_by_name_and_private_network
                             test_http_tool.py::test_metadata_names_are_blocked_without_dns
  41 DNS tricks ........... test_http_tool.py::test_dns_answers_are_all_checked
                             test_http_tool.py::test_https_is_pinned_to_the_vetted_address_with_host_and_sni_kept
  42 redirects ............ test_http_tool.py::test_redirect_to_a_foreign_or_metadata_target_is_blocked
                             test_http_tool.py::test_secret_headers_are_dropped_on_a_cross_origin_redirect
                             test_http_tool.py::test_too_many_redirects
  43 schemes .............. test_http_tool.py::test_only_http_and_https_schemes
                             test_http_tool.py::test_uppercase_scheme_is_fine
  44 ports ................ test_http_tool.py::test_authority_injection_is_refused
                             test_http_tool.py::test_a_whole_url_from_an_argument_is_checked_against_allow_hosts
  45 CRLF / NUL ........... test_http_tool.py::test_header_with_crlf_or_nul_is_refused_naming_the_header_not_the_value
  46 body injection ....... test_http_tool.py::test_json_body_is_built_from_values
  47 size bombs ........... test_http_tool.py::test_a_50_mb_body_is_cut_at_the_cap_without_downloading_it
                             (the cap counts decoded bytes, so a gzip bomb stops there too; not tested)
  48 method / side effects  the method is fixed by the file (no argument reaches it); `confirm:`
                             is not applicable: flowrun has no interactive approval
  49 one outbound path .... partly: the HTTP tool ignores proxy variables (trust_env=False) and checks the
                             target; not applicable for Python tools (flowrun offers them no HTTP helper)
E. Network and API faults
  50 chat cut mid-text .... test_reliability_api.py::test_responses_and_chat_cut_mid_answer_exit_3_and_the_log_holds_what_arrived
                             (exit 3, not retried: the partial text was already printed)
  51 background resume .... test_providers_responses.py::test_background_stream_resumes_after_the_last_sequence_number_without_duplicates
                             test_scripted_server.py::test_responses_background_stream_can_be_resumed_after_a_cursor
  52 responses cut ........ test_reliability_api.py::test_responses_and_chat_cut_mid_answer_exit_3_and_the_log_holds_what_arrived
                             (reported as not resumable; not re-issued, for the same reason as 50)
  53 stalled stream ....... test_reliability_api.py::test_a_stall_longer_than_the_model_timeout_fails_with_exit_3
                             test_reliability_api.py::test_an_assistants_stall_is_recovered_from_the_run
                             test_reliability_units.py::test_a_stream_with_no_event_within_the_idle_time_is_given_up
                             test_providers_chat.py::test_a_stalled_stream_hits_the_read_timeout
                             (the idle timeout is model.timeout, measured on events; real time, no fake clock)
  54 no terminal event .... test_providers_responses.py::test_stream_ending_without_a_terminal_event_raises
                             test_chat_stream.py::test_stream_without_finish_reason_is_truncation
                             test_providers_assistants.py::test_stream_without_terminal_event_is_recovered_by_polling
  55 error event .......... test_cli_run.py::test_an_error_event_mid_stream_fails_the_run_clearly
                             test_providers_assistants.py::test_error_event_fails_the_turn_and_cancels_the_run
  56 429 handling ......... test_retries.py::test_429_with_retry_after_waits_the_advised_delay
                             test_retries.py::test_parse_retry_after_forms
                             test_retries.py::test_retry_after_above_the_cap_fails_fast
                             test_retries.py::test_insufficient_quota_is_never_retried
  57 other statuses ....... test_retries.py::test_retryable_statuses_back_off_exponentially
                             test_retries.py::test_client_errors_are_not_retried
                             test_retries.py::test_x_should_retry_header_decides
                             test_reliability_api.py::test_401_names_the_variable_and_never_echoes_the_key
  58 assistants expiry .... test_reliability_api.py::test_assistants_tools_are_cut_short_to_submit_before_the_run_expires
                             test_reliability_api.py::test_assistants_run_expired_while_a_tool_was_slow_is_exit_1_and_the_log_is_complete
                             test_providers_assistants.py::test_an_expired_run_is_reported_instead_of_submitting_late
                             test_reliability_units.py::test_a_deadline_cuts_a_tools_timeout_and_leaves_a_margin
                             test_reliability_units.py::test_the_assistants_deadline_is_on_our_clock_even_when_the_servers_clock_differs
                             (no "start a new run" option: not done)
  59 single submit ........ test_reliability_tools.py::test_one_submission_answers_every_call_even_when_tools_fail
  60 thread locked ........ test_providers_assistants.py::test_an_active_run_is_cancelled_with_a_notice_then_the_run_is_retried_once
  61 reply invariants ..... test_providers_chat.py::test_tool_round_trip_replays_the_calls_and_one_tool_message_per_call_in_order
                             test_providers_responses.py::test_two_parallel_calls_then_text_with_stored_continuation
                             test_scripted_server.py::test_chat_rejects_unanswered_tool_calls_like_openai
  62 no duplicate effects . test_reliability_api.py::test_assistants_submission_cut_after_the_server_took_it_is_not_sent_or_run_again
                             test_reliability_api.py::test_5xx_on_the_submission_is_retried_and_the_tool_runs_once
  63 ctrl-c ............... test_interrupt.py::test_ctrl_c_cancels_keeps_partial_text_and_exits_130
F. Load and concurrency
  64 concurrency cap ...... test_dispatcher.py::test_max_concurrency_bounds_calls_in_flight
                             test_dispatcher.py::test_results_come_back_in_call_order_with_one_per_call_even_for_duplicate_ids
  65 fatal parallel call .. not applicable: no `on_error: fail` (a tool's failure is its output)
  66 many processes ....... test_runlog.py::test_ten_processes_write_one_db
                             (two runs on one Assistants thread: not applicable, each run makes its own thread)
  67 rate-limit storm ..... test_batch.py::test_a_429_pauses_the_whole_batch_for_its_retry_after
                             test_retries.py::test_retryable_statuses_back_off_exponentially (jittered);
                             the spread of retry timestamps across runs is not measured
  68 soak ................. bench/soak.py (2,000 runs; reports open file descriptors and RSS)
  69 pool pressure ........ test_reliability_tools.py::test_100_parallel_http_calls_to_a_slow_host_all_answer
G. Secrets
  70 canary sweep ......... test_reliability_secrets.py::test_canary_sweep_success_path_every_channel
                             test_reliability_secrets.py::test_canary_sweep_failure_paths
                             (-v and OPENAI_LOG=debug; flowrun has no --debug)
  71 encoded forms ........ test_reliability_secrets.py::test_canary_sweep_success_path_every_channel
                             (base64 of "user:secret" is not derived: only the secret's own forms)
  72 templated headers .... test_http_tool.py::test_describe_redacts_every_header_that_reads_env
  73 secret in URL ........ test_http_tool.py::test_secret_in_the_url_is_masked
                             test_reliability_tools.py::test_the_http_debug_log_line_masks_a_secret_in_the_url
  74 library error text ... test_reliability_secrets.py::test_canary_sweep_success_path_every_channel
                             test_reliability_secrets.py::test_canary_sweep_failure_paths
  75 template injection ... test_templating.py::test_arguments_are_inert_data
                             test_templating.py::test_inert_arguments_in_every_part_of_an_http_request
                             test_http_tool.py::test_argument_holding_an_env_expression_is_sent_literally
  76 exfiltration ......... test_http_tool.py::test_a_whole_url_from_an_argument_is_checked_against_allow_hosts
                             test_http_tool.py::test_secret_headers_are_dropped_on_a_cross_origin_redirect
  77 multi-line / short ... test_reliability_secrets.py::test_multi_line_secrets_are_masked_line_by_line_and_short_ones_do_not_shred_text
                             test_validate.py::test_short_env_value_is_a_warning_and_never_shown
  78 secrets at rest ...... test_validate.py::test_validate_command_masks_secret_values_in_snippets
                             test_validate.py::test_pasted_key_never_reaches_the_output
                             test_runlog.py::test_masker_masks_every_string_stored
                             (no --print-config or resume files exist; no tracebacks are printed)
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REFERENCE = re.compile(r"\b(test_\w+\.py)::(test_\w+)")


def test_every_test_the_matrix_names_exists():
    missing = []
    refs = REFERENCE.findall(__doc__)
    assert len(refs) > 150
    for file, name in refs:
        path = TESTS / file
        if not path.exists() or not re.search(rf"^def {name}\(", path.read_text(), re.M):
            missing.append(f"{file}::{name}")
    assert missing == []


def test_every_numbered_case_of_reliability_section_7_is_in_the_matrix():
    section = __doc__.split("\ndocs/reliability.md §7\n", 1)[1]
    numbers = [int(n) for n in re.findall(r"^\s{1,3}(\d{1,2}) \S", section, re.M)]
    assert numbers == list(range(1, 79))
