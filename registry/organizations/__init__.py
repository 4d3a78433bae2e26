"""Departments (organisations) in a hierarchy, their members and roles."""
