-- mod_xfed_route: the outbound federation route of an xfed-managed
-- Prosody. Managed by xfed: edit the spec, not this file.
--
-- For every partner domain in the route table (routes.json, written by
-- xfed from the spec), a new outgoing server-to-server stream goes to the
-- edge gateways' internal listeners, in the table's order, instead of the
-- partner's own SRV records; Direct TLS (xmpps-server) is not tried for
-- them, as the gateways offer STARTTLS. Any other domain resolves as
-- Prosody always does. The table is re-read on every config reload
-- (SIGHUP), so a moved route needs no restart.
--
-- How: mod_s2s resolves each new outgoing stream through
-- net.resolvers.service's `new`, looked up at call time; this module
-- replaces that function while it is loaded and answers the partner
-- domains with a fixed (manual) resolver.

module:set_global();

local json = require "util.json";
local manual = require "net.resolvers.manual";
local service = require "net.resolvers.service";

local route_file = module:get_option_string("xfed_route_file");
local partners, targets = {}, {};

local function same_targets(a, b)
	if #a ~= #b then
		return false;
	end
	for i = 1, #a do
		for j = 1, 4 do
			if a[i][j] ~= b[i][j] then
				return false;
			end
		end
	end
	return true;
end

-- Streams already open keep the way they were opened: those to a domain
-- whose route changed (the edge moved, or the domain joined or left the
-- table) are closed, so the next stanza opens a new one on the new route.
local function close_moved(before_partners, before_targets)
	local moved_all = not same_targets(before_targets, targets);
	for _, host in pairs(prosody.hosts) do
		for remote, session in pairs(host.s2sout or {}) do
			local was, is = before_partners[remote] or false, partners[remote] or false;
			if was ~= is or (is and moved_all) then
				module:log("info", "closing the stream to %s: its route changed", remote);
				session:close();
			end
		end
	end
end

local function load_routes()
	if not route_file then
		module:log("error", "xfed_route_file is not set: no domain is routed to the edge");
		partners, targets = {}, {};
		return;
	end
	local f, err = io.open(route_file, "r");
	if not f then
		module:log("error", "cannot read the route table %s: %s", route_file, err);
		return;
	end
	local text = f:read("*a");
	f:close();
	local doc, perr = json.decode(text);
	if type(doc) ~= "table" or type(doc.partners) ~= "table" or type(doc.targets) ~= "table" then
		module:log("error", "the route table %s is not valid: %s", route_file, tostring(perr));
		return;
	end
	local p, t = {}, {};
	for _, domain in ipairs(doc.partners) do
		p[domain] = true;
	end
	for _, target in ipairs(doc.targets) do
		t[#t + 1] = { target.family, target.address, tonumber(target.port), target.server };
	end
	local before_partners, before_targets = partners, targets;
	partners, targets = p, t;
	module:log("info", "route table %s: %d partner domains to %d edge listeners", route_file, #doc.partners, #t);
	close_moved(before_partners, before_targets);
end

-- The function this module stands in for, kept once even if the module
-- is reloaded.
local original = service.xfed_original_new or service.new;
service.xfed_original_new = original;

local function routed_new(hostname, srv, conn_type, extra)
	if partners[hostname] then
		if srv == "xmpps-server" then
			return manual.new({}, conn_type, extra);
		end
		local list = {};
		for i, target in ipairs(targets) do
			list[i] = { target[1], target[2], target[3], extra };
		end
		module:log("debug", "routing the stream to %s through %d edge listeners", hostname, #list);
		return manual.new(list, conn_type, extra);
	end
	return original(hostname, srv, conn_type, extra);
end

function module.load()
	load_routes();
	service.new = routed_new;
end

function module.unload()
	service.new = original;
end

module:hook_global("config-reloaded", load_routes);
