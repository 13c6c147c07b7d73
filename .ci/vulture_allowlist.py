"""Names the dead-code check (vulture, run by .ci/run) cannot see used. Each group says who uses them."""

# ruff: noqa
# Streamlit cache keys: arguments that exist only so st.cache_* recomputes when a file or run changes.
mtime
run_v
store_v
version_a
version_b
bkey
dkey
# pydantic: model settings and validators are called by pydantic itself.
model_config
_._fields_fit_name
_._order_layers
_._fractions_sum
# Settings of third-party modules (osmnx, the boundary downloader), set as attributes.
_.requests_timeout
_.overpass_settings
_.requests_kwargs
_.use_cache
_.overpass_rate_limit
# folium / branca: Jinja templates read these attributes of the map elements.
_._name
left_pane
right_pane
_.left_pane
_.right_pane
geojson
_.geojson
# Report fields serialized to the CLI's --json (dataclasses.asdict).
requested
skipped
_.skipped
# sqlite3 reads the connection's row_factory.
_.row_factory
# Keras calls the callbacks' hooks (and a layer's compute_output_shape) and reads stop_training.
_.on_epoch_begin
_.compute_output_shape
_.on_train_batch_end
_.on_epoch_end
_.stop_training
# Earth Engine's lazy initialization is process-global: tests reset it between credential scenarios.
reset
